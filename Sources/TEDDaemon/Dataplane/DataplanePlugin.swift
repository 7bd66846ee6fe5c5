import Logging
import NIOConcurrencyHelpers
import NIOCore
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel

/// The Linux data plane: XFRM traps whose ACQUIREs start discoveries (patent blocks
/// 202-210), probes that leave with P's source, and nftables interception of probes
/// addressed to the hosts this gateway protects.
public final class DataplanePlugin: DaemonPlugin {
    let configuration: Configuration
    let plan: [PlannedXFRMPolicy]
    let logger: Logger
    let state = NIOLockedValueBox(State())
    /// First packets held while their tunnel is found (traps on, `hold` not off).
    let hold: FirstPacketHold?

    struct State {
        var table: XFRMPolicyTable?
        var acquire: AcquireListener?
        var interception: NFTInterception?
        var listener: InterceptListener?
        var routing: ProbeRoutingException?
        /// kernel-libipsec without `trap-interface`: child SAs' traffic is routed into the
        /// tunnel device (looked up by name each time: it is re-created when charon restarts),
        /// so each child SA that is up gets bypasses there, with the device they were put on.
        var tunnelBypasses = false
        var espInKernel = true
        var trapInterface: Int32 = 0
        /// The bypasses of the child SAs that are up, shared by equal selectors.
        var bypasses = ChildReferences<Bypass>()
        /// Puts back what other programs remove (`LayerRepair`).
        var repair: Task<Void, Never>?
        /// Told when an XFRM flush took charon's policies of live tunnels with ted's (kernel
        /// ESP): the hand-off sets those tunnels up again.
        var policiesLost: (@Sendable () -> Void)?
    }

    /// Who sets tunnels up again when an XFRM flush took their policies (the hand-off).
    public func onPoliciesLost(_ action: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.policiesLost = action }
    }

    /// One bypass policy on the tunnel device.
    struct Bypass: Hashable, Sendable {
        let policy: PlannedXFRMPolicy
        let device: Int32
    }

    /// kernel-libipsec's tunnel device.
    static let tunnelDevice = "ipsec0"

    /// Plans the XFRM policies now, so an inexpressible policy is refused before anything starts.
    public init(configuration: Configuration, logger: Logger) throws(XFRMPlanError) {
        self.configuration = configuration
        self.logger = logger
        self.plan = configuration.dataplane.traps
            ? try XFRMTrapPlan.plan(configuration.policy, maxSelectorsPerEntry: configuration.dataplane.maxSelectorsPerEntry)
            : []
        self.hold = configuration.dataplane.traps && configuration.hold.enabled
            ? FirstPacketHold(configuration: configuration, tunnelDevice: Self.tunnelDevice, logger: logger) : nil
    }

    /// Sends probes from P's source address (IP_TRANSPARENT); a probe whose source is
    /// this gateway goes out of the TED socket instead.
    public var probeSender: ProbeSender {
        let identity = configuration.identity, logger = self.logger
        return { probe in
            if probe.source == identity { return false }
            do {
                try TransparentProbe.send(Array(probe.bytes.readableBytesView), from: probe.source, port: probe.sourcePort,
                                          to: probe.destination, port: probe.destinationPort)
                return true
            } catch {
                logger.warning("transparent probe failed; sending from the TED socket", metadata: ["ted.error": "\(error)"])
                return false
            }
        }
    }

    /// What must hold even while ted is not running, installed before the TED socket binds:
    /// the XFRM traps (taken over in place from a previous ted) and the inbound guard.
    /// Neither is removed on stop; `ted cleanup` removes them.
    public func prepare() async throws {
        let options = configuration.dataplane
        guard options.traps else { return }
        if let seconds = options.effectiveAcquireExpires {
            setSysctl("net/core/xfrm_acq_expires", "\(seconds)")
        }
        let espInKernel = kernelHasESP()
        let tunnelBypasses = !espInKernel && options.trapInterface == nil
        var interface: Int32 = 0
        if let name = options.trapInterface {
            guard let index = interfaceIndex(name) else { throw DataplaneError("trap-interface \(name) does not exist") }
            interface = index
        }
        let table = try XFRMPolicyTable()
        // Bypasses of live tunnels are kept until the IKE daemon says which are live (pruneBypasses).
        let removed = try table.adopt(plan, interface: interface, keepInterface: tunnelBypasses ? interfaceIndex(Self.tunnelDevice) : nil)
        state.withLockedValue {
            $0.table = table
            $0.tunnelBypasses = tunnelBypasses
            $0.espInKernel = espInKernel
            $0.trapInterface = interface
        }
        try inboundGuard(espInKernel: espInKernel).install()
        if let hold { try hold.prepare() } else { HoldTable.remove() }
        logger.info("XFRM traps in place", metadata: ["ted.policies": "\(plan.count)", "ted.removed_stale": "\(removed)",
                                                      "ted.esp_in_kernel": "\(espInKernel)", "ted.guard": "inet \(InboundGuard.tableName)"])
    }

    public func start(node: TEDNode) async throws {
        let options = configuration.dataplane
        if options.traps {
            let acquire = try AcquireListener { packet in node.trigger(packet) }
            state.withLockedValue { $0.acquire = acquire }
            try hold?.start(metrics: node.metrics, knownToFail: { packets in node.knownToFail(packets) },
                            trigger: { packet in node.trigger(packet) })
            if !state.withLockedValue({ $0.espInKernel }) {
                let routing = ProbeRoutingException(probePort: configuration.probePort)
                try routing.install()
                state.withLockedValue { $0.routing = routing }
            }
        }
        if options.intercept {
            let interception = NFTInterception(
                destinations: NFTInterception.destinations(policy: configuration.policy, identity: configuration.identity),
                probePort: configuration.probePort, listenPort: options.interceptPort)
            try interception.install()
            state.withLockedValue { $0.interception = interception }
            let passer = ProbePasser(enabled: configuration.responder.passThrough, policy: node.classifier,
                                     metrics: node.metrics, logger: logger)
            let listener = try InterceptListener(port: options.interceptPort, families: interception.families) { datagram in
                node.inject(ByteBuffer(bytes: datagram.bytes), from: datagram.source, port: datagram.sourcePort) {
                    passer.passOn(datagram)
                }
            }
            state.withLockedValue { $0.listener = listener }
            node.countInterceptOverflows { listener.overflows }
            logger.info("probe interception installed", metadata: ["ted.table": "inet \(NFTInterception.tableName)",
                                                                  "ted.port": "\(options.interceptPort)"])
        }
        startRepairs(metrics: RepairMetrics(registry: node.metrics))
    }

    /// A child SA is up: under kernel-libipsec its traffic is routed into ipsec0, where the
    /// traps would catch it again; bypass exactly its selectors on that device. Then its
    /// held first packets go on.
    public func childUp(_ child: String, selectors: [TrafficSelector]) {
        installBypasses(child, selectors)
        hold?.tunnelUp(child, selectors: selectors)
    }

    private func installBypasses(_ child: String, _ selectors: [TrafficSelector]) {
        state.withLockedValue { state in
            guard state.tunnelBypasses, let table = state.table, !state.bypasses.holds(child) else { return }
            guard let device = interfaceIndex(Self.tunnelDevice) else {
                logger.warning("a child SA is up but \(Self.tunnelDevice) does not exist", metadata: ["ted.child": "\(child)"])
                return
            }
            let plan = selectors.flatMap { selector in
                XFRMTrapPlan.tunnelBypass(proto: selector.proto, source: selector.local, sourcePorts: selector.localPorts,
                                          destination: selector.remote, destinationPorts: selector.remotePorts)
            }
            let added = state.bypasses.add(child, plan.map { Bypass(policy: $0, device: device) })
            do {
                for bypass in added { try table.install([bypass.policy], interface: bypass.device) }
            } catch {
                logger.warning("cannot bypass a tunnel's traffic on ipsec0", metadata: ["ted.child": "\(child)", "ted.error": "\(error)"])
            }
        }
    }

    /// ted's view of the child SAs is complete (after connecting to the IKE daemon): the
    /// bypasses on the tunnel device that no live child claims (left by a ted that was
    /// killed, or by a tunnel that went while ted was away) are removed, and the held-packet
    /// table knows exactly the live tunnels.
    public func reconciled() {
        pruneBypasses()
        hold?.reconciled()
    }

    private func pruneBypasses() {
        state.withLockedValue { state in
            guard state.tunnelBypasses, let table = state.table else { return }
            let claimed = Set(state.bypasses.keys.map { XFRMPolicyTable.key($0.policy, interface: $0.device) })
            let removed = (try? table.removeBand(exceptInterface: state.trapInterface, except: claimed)) ?? 0
            if removed > 0 { logger.info("removed bypasses of tunnels that are gone", metadata: ["ted.count": "\(removed)"]) }
        }
    }

    /// A child SA went down: its bypasses go, so its traffic meets the traps again.
    public func childDown(_ child: String) {
        hold?.tunnelDown(child)
        state.withLockedValue { state in
            for bypass in state.bypasses.remove(child) { state.table?.remove([bypass.policy], interface: bypass.device) }
        }
    }

    /// A child SA was rekeyed: its successor (a new unique name) keeps its bypasses and set
    /// elements, and its going down later removes them.
    public func childRekeyed(_ old: String, to new: String) {
        hold?.tunnelRekeyed(old, to: new)
        state.withLockedValue { state in
            for bypass in state.bypasses.rename(old, to: new) { state.table?.remove([bypass.policy], interface: bypass.device) }
        }
    }

    public func held() -> HeldStatus? { hold?.status }

    /// With traps on, how ESP is carried (known once `prepare` looked); without, none.
    public var dataplaneMode: DataplaneMode? {
        guard configuration.dataplane.traps else { return DataplaneMode.none }
        return state.withLockedValue { $0.espInKernel } ? .kernelESP : .libipsec
    }

    /// Stops listening and intercepting. The traps, the live tunnels' bypasses and the
    /// inbound guard stay: while ted is stopped, protected traffic without an SA is dropped,
    /// never sent in clear, and tunnels that are up keep carrying traffic.
    public func stop() async {
        let current = state.withLockedValue { state in
            defer { state = State() }
            return state
        }
        current.repair?.cancel()
        hold?.stop()
        current.listener?.stop()
        current.interception?.remove()
        current.acquire?.stop()
        current.routing?.remove()
        logger.info("ted stopped listening; XFRM traps, the inbound guard and the hold table stay in place (ted cleanup removes them)",
                    metadata: ["ted.policies": "\(current.table?.installedCount ?? 0)"])
    }

    func inboundGuard(espInKernel: Bool) -> InboundGuard {
        InboundGuard(policy: configuration.policy, probePort: configuration.probePort, listenPort: configuration.listen.port,
                     tunnelDevice: espInKernel ? nil : Self.tunnelDevice)
    }

    private func setSysctl(_ key: String, _ value: String) {
        if !Sysctl.set(key, value) { logger.warning("cannot set sysctl", metadata: ["ted.key": "\(key)"]) }
    }
}

/// A data plane start-up failure.
public struct DataplaneError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
