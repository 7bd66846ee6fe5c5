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
    private let configuration: Configuration
    private let plan: [PlannedXFRMPolicy]
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var table: XFRMPolicyTable?
        var acquire: AcquireListener?
        var interception: NFTInterception?
        var listener: InterceptListener?
        var routing: ProbeRoutingException?
        /// kernel-libipsec without `trap-interface`: the tunnel device's index, and the
        /// bypass policies installed for each child SA that is up.
        var tunnelDevice: Int32?
        var childBypasses: [String: [PlannedXFRMPolicy]] = [:]
    }

    /// Plans the XFRM policies now, so an inexpressible policy is refused before anything starts.
    public init(configuration: Configuration, logger: Logger) throws(XFRMPlanError) {
        self.configuration = configuration
        self.logger = logger
        self.plan = configuration.dataplane.traps
            ? try XFRMTrapPlan.plan(configuration.policy, maxSelectorsPerEntry: configuration.dataplane.maxSelectorsPerEntry)
            : []
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

    public func start(node: TEDNode) async throws {
        let options = configuration.dataplane
        if options.traps {
            if let seconds = options.acquireExpires {
                setSysctl("net/core/xfrm_acq_expires", "\(seconds)")
            }
            let table = try XFRMPolicyTable()
            let stale = try table.removeStale()
            if stale > 0 { logger.notice("removed XFRM policies a previous ted left", metadata: ["ted.count": "\(stale)"]) }
            var interface: Int32 = 0
            if let name = options.trapInterface {
                guard let index = interfaceIndex(name) else { throw DataplaneError("trap-interface \(name) does not exist") }
                interface = index
            }
            try table.install(plan, interface: interface)
            state.withLockedValue { $0.table = table }
            let acquire = try AcquireListener { packet in node.trigger(packet) }
            state.withLockedValue { $0.acquire = acquire }
            let espInKernel = kernelHasESP()
            if !espInKernel {
                let routing = ProbeRoutingException(probePort: configuration.probePort)
                try routing.install()
                state.withLockedValue { $0.routing = routing }
                if options.trapInterface == nil {
                    guard let device = interfaceIndex("ipsec0") else {
                        throw DataplaneError("kernel-libipsec is in use but ipsec0 does not exist: start charon before ted, or set dataplane.trap-interface")
                    }
                    state.withLockedValue { $0.tunnelDevice = device }
                }
            }
            logger.info("XFRM traps installed", metadata: ["ted.policies": "\(plan.count)", "ted.esp_in_kernel": "\(espInKernel)"])
        }
        if options.intercept {
            let interception = NFTInterception(
                destinations: NFTInterception.destinations(policy: configuration.policy, identity: configuration.identity),
                probePort: configuration.probePort, listenPort: options.interceptPort)
            try interception.install()
            state.withLockedValue { $0.interception = interception }
            let listener = try InterceptListener(port: options.interceptPort, families: interception.families) { datagram in
                node.inject(ByteBuffer(bytes: datagram.bytes), from: datagram.source, port: datagram.sourcePort)
            }
            state.withLockedValue { $0.listener = listener }
            logger.info("probe interception installed", metadata: ["ted.table": "inet \(NFTInterception.tableName)",
                                                                  "ted.port": "\(options.interceptPort)"])
        }
    }

    /// A child SA is up: under kernel-libipsec its traffic is routed into ipsec0, where the
    /// traps would catch it again; bypass exactly its selectors on that device.
    public func childUp(_ child: String, localTS: [String], remoteTS: [String]) {
        state.withLockedValue { state in
            guard let device = state.tunnelDevice, let table = state.table, state.childBypasses[child] == nil else { return }
            var plan: [PlannedXFRMPolicy] = []
            for local in localTS {
                for remote in remoteTS {
                    guard let l = TrafficSelectors.parse(local), let r = TrafficSelectors.parse(remote),
                          l.pattern.family == r.pattern.family else { continue }
                    let proto = l.proto.isAny ? r.proto : l.proto
                    plan += XFRMTrapPlan.tunnelBypass(proto: proto, source: l.pattern, sourcePorts: l.ports,
                                                      destination: r.pattern, destinationPorts: r.ports)
                }
            }
            do {
                try table.install(plan, interface: device)
                state.childBypasses[child] = plan
            } catch {
                logger.warning("cannot bypass a tunnel's traffic on ipsec0", metadata: ["ted.child": "\(child)", "ted.error": "\(error)"])
            }
        }
    }

    /// A child SA went down: its bypasses go, so its traffic meets the traps again.
    public func childDown(_ child: String) {
        state.withLockedValue { state in
            guard let plan = state.childBypasses.removeValue(forKey: child), let device = state.tunnelDevice else { return }
            state.table?.remove(plan, interface: device)
        }
    }

    public func stop() async {
        let current = state.withLockedValue { state in
            defer { state = State() }
            return state
        }
        current.listener?.stop()
        current.interception?.remove()
        current.acquire?.stop()
        current.routing?.remove()
        current.table?.removeInstalled()
        logger.info("data plane objects removed")
    }

    private func setSysctl(_ key: String, _ value: String) {
        guard let file = fopen("/proc/sys/\(key)", "w") else {
            logger.warning("cannot set sysctl", metadata: ["ted.key": "\(key)"])
            return
        }
        fputs(value, file)
        fclose(file)
    }
}

/// A data plane start-up failure.
public struct DataplaneError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif
