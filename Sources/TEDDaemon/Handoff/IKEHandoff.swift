import Logging
import NIOCore
import TEDConfig
import TEDEngine
import TEDModel
import TEDVici
import TEDWire

/// Hands discoveries to the IKE daemon (patent: "a secure tunnel is ready to be established").
///
/// On a discovery: one connection per (peer, intersection), never a duplicate, whose child
/// selectors are the intersection, then `initiate` (which returns at once: the outcome is
/// the `child-updown` event, or nothing before `initiate-timeout`, which fails it). When
/// the IKE or child SA goes down the discovery is forgotten, so the next packet
/// rediscovers. As responder, one `%any` connection per permit entry.
///
/// The IKE daemon may come and go: a supervisor connects with backoff, loads the
/// credentials and responder connection, subscribes to events, and reconciles with what
/// charon holds (child SAs that are up are adopted, stale `ted-*` connections unloaded).
/// When charon goes away, every tunnel record goes with it; when it is back, the same again.
///
/// What to do is `HandoffMachine`'s (pure, tested with a clock); this actor is the I/O
/// around it: VICI calls, the node, the data plane's hooks, the log, and one timer.
public actor IKEHandoff: DaemonPlugin {
    private let controller: any IKEController
    private let configuration: Configuration
    private let options: IKEOptions
    private let logger: Logger
    private let clock: HandoffClock
    private var node: TEDNode?
    /// Every decision (`HandoffMachine`); this actor performs its actions.
    private var machine: HandoffMachine
    /// How many tunnels are up, as `ted_tunnels` last showed.
    private var tunnelsUp = 0
    /// The one timer: `machine.tick` at its next deadline.
    private var timer: Task<Void, Never>?
    private var timerDeadline: NIODeadline?
    private var supervisor: Task<Void, Never>?
    /// Checks that charon still holds what ted loaded (`repairCharon`).
    private var checker: Task<Void, Never>?
    private var repairs: RepairMetrics?
    private var connected = false
    /// `ted_ike_connected`, `ted_ike_reconnects_total`.
    private var health: IKEMetrics?
    /// When the connection ted holds now was made (seconds since the epoch); nil while disconnected.
    private var connectedSince: Double?
    /// Connections made again after one was lost.
    private var reconnects = 0
    private var everConnected = false
    /// What ted's connections authenticate with, as loaded into charon by `connect`; nil
    /// while not connected.
    private var authentication: IKEAuthentication?
    /// The responder connections loaded at the last (re)connection.
    private var responderConnections: Set<String> = []

    /// Told when a child SA of one of ted's connections comes up or goes down (both roles),
    /// and when ted's view of the child SAs is complete again (after a (re)connection).
    public struct ChildHooks: Sendable {
        public var up: @Sendable (_ child: String, _ selectors: [TrafficSelector]) -> Void
        public var down: @Sendable (_ child: String) -> Void
        public var rekeyed: @Sendable (_ old: String, _ new: String) -> Void
        public var reconciled: @Sendable () -> Void
        public init(up: @escaping @Sendable (String, [TrafficSelector]) -> Void, down: @escaping @Sendable (String) -> Void,
                    rekeyed: @escaping @Sendable (String, String) -> Void = { _, _ in }, reconciled: @escaping @Sendable () -> Void = {}) {
            self.up = up
            self.down = down
            self.rekeyed = rekeyed
            self.reconciled = reconciled
        }
    }
    private let hooks: ChildHooks?

    public init(controller: any IKEController, configuration: Configuration, options: IKEOptions, logger: Logger,
                childHooks: ChildHooks? = nil, clock: HandoffClock = .system) {
        self.hooks = childHooks
        self.clock = clock
        self.controller = controller
        self.configuration = configuration
        self.options = options
        self.logger = logger
        machine = HandoffMachine(settings: .init(identity: configuration.identity, options: options, policy: configuration.policy))
    }

    /// The discovery callback: safe to call from the event loop.
    public nonisolated func discovered(_ discovery: Discovery) {
        Task { await self.handOff(discovery) }
    }

    /// Never fails: charon may not be up yet. The supervisor keeps trying.
    public func start(node: TEDNode) async throws {
        self.node = node
        repairs = RepairMetrics(registry: node.metrics)
        health = IKEMetrics(registry: node.metrics)
        supervisor = Task { await self.supervise() }
        checker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.checkInterval)
                await self.repairCharon()
            }
        }
    }

    /// Without a supervisor: connects once, and the caller feeds the events (`handle`).
    func connectOnce(node: TEDNode) async throws {
        self.node = node
        repairs = RepairMetrics(registry: node.metrics)
        health = IKEMetrics(registry: node.metrics)
        _ = try await connect()
    }

    /// Leaves ted's connections and their SAs in charon: tunnels that are up keep carrying
    /// traffic while ted is stopped, and the next ted adopts them (`ted cleanup` removes them).
    public func stop() async {
        supervisor?.cancel()
        checker?.cancel()
        timer?.cancel()
        machine.stopped()
        await controller.close()
    }

    public func tunnels() async -> [TunnelRecord] { machine.records }

    /// Whether ted holds a working connection to the IKE daemon now.
    public var isConnected: Bool { connected }

    public func charon() async -> CharonStatus? {
        CharonStatus(connectedSince: connectedSince, reconnects: reconnects)
    }

    /// The connection name of a (peer, child selector) pair (`HandoffMachine.connectionName`).
    public static func connectionName(peer: IPAddress, child: TrafficSelector) -> String {
        HandoffMachine.connectionName(peer: peer, child: child)
    }

    // MARK: The supervisor

    private func supervise() async {
        var delay: Duration = .milliseconds(250)
        var lastFailure: String?
        while !Task.isCancelled {
            do {
                let events = try await connect()
                logger.notice("connected to the IKE daemon", metadata: ["ted.vici": "\(options.vici)"])
                lastFailure = nil
                delay = .milliseconds(250)
                for await event in events { await handle(event) }
                if Task.isCancelled { return }
                await disconnected()
                logger.warning("the IKE daemon went away; its tunnels are gone, traps keep their traffic blocked",
                               metadata: ["ted.vici": "\(options.vici)"])
            } catch {
                let text = "\(error)"
                if text != lastFailure {
                    logger.warning("cannot use the IKE daemon yet; retrying", metadata: ["ted.error": "\(text)"])
                    lastFailure = text
                }
                await disconnected()
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(4))
        }
    }

    /// Loads what ted needs into charon, subscribes, and reconciles; returns the events.
    private func connect() async throws -> AsyncStream<IKEEvent> {
        switch options.authentication {
        case .psk, .peerKeys:
            try await loadSharedKeys()
            authentication = .psk
        case .pubkey(let certificate, let key, let ca):
            // Read again on every (re)connection: a renewed certificate takes effect then.
            func read(_ path: String) throws -> [UInt8] {
                guard let bytes = readFileBytes(path, maxBytes: 1 << 20) else { throw ViciClient.Failure("cannot read \(path)") }
                return bytes
            }
            let files = CertificateFiles(certificate: try read(certificate), privateKey: try read(key), caCertificate: try read(ca))
            authentication = .pubkey(try await controller.loadCertificates(files))
        }
        let events = try await controller.events()
        if options.respond { try await loadResponderConnections() }
        try await reconcile()
        connected = true
        connectedSince = ProcessStart.wallClock()
        if everConnected {
            reconnects += 1
            health?.reconnects.increment()
        }
        everConnected = true
        health?.connected.record(1)
        return events
    }

    /// Loads the configuration's keys and unloads ted's keys charon holds beyond them (a
    /// peer removed from the configuration loses its key with the next start).
    private func loadSharedKeys() async throws {
        let keys = SharedKeys.plan(configuration)
        for key in keys { try await controller.loadSharedKey(key) }
        let wanted = Set(keys.map(\.id))
        for id in try await controller.sharedKeyIDs() where id.hasPrefix(SharedKey.idPrefix) && !wanted.contains(id) {
            try await controller.unloadSharedKey(id: id)
            logger.info("unloaded a key no longer configured", metadata: ["ted.key": "\(id)"])
        }
    }

    /// Adopts the child SAs of ted's connections that are up; unloads ted's connections
    /// that have none (a killed ted's, or one whose tunnel went while ted was away).
    private func reconcile() async throws {
        let live = try await controller.childSAs().filter { $0.owner.hasPrefix("ted-") }
        let names = try await controller.connectionNames()
        await perform(machine.reconciled(live: live, connections: names, keep: responderConnections, now: clock.now()))
        hooks?.reconciled()
        if !live.isEmpty { logger.info("adopted live child SAs", metadata: ["ted.children": "\(live.count)"]) }
    }

    /// How often charon is asked whether it still holds ted's keys and connections.
    static let checkInterval = Duration.seconds(1)

    /// Puts back ted's keys and connections that charon no longer holds though it is
    /// connected: an operator's `swanctl --load-all` (`systemctl reload strongswan`)
    /// unloads every connection its own files do not name. Tunnels that are up keep their
    /// SAs meanwhile; without the connections, peers' new IKE SAs would be refused.
    func repairCharon() async {
        guard connected, let authentication else { return }
        do {
            let present = Set(try await controller.connectionNames())
            var missing = responderConnections.subtracting(present).sorted()
            let tunnels = machine.loadedConnections.filter { !present.contains($0.name) }
            missing += tunnels.map(\.name)
            var keysMissing = false
            if case .psk = authentication {
                let wanted = Set(SharedKeys.plan(configuration).map(\.id))
                keysMissing = !wanted.isSubset(of: Set(try await controller.sharedKeyIDs()))
            }
            guard !missing.isEmpty || keysMissing else { return }
            if keysMissing { try await loadSharedKeys() }
            if !responderConnections.isSubset(of: present) { try await loadResponderConnections() }
            // A tunnel being set up when its connection (or key) went is started again: its
            // IKE_SA may have failed for the missing configuration (a reload racing ted's start).
            for connection in tunnels {
                try await controller.loadConnection(connection, authentication: authentication)
                if machine.isConnecting(connection.name) { try await controller.initiate(child: connection.name, ike: connection.name) }
            }
            repairs?.repaired(.charon)
            logger.warning("ted's connections or keys were unloaded from charon by another program; put back",
                           metadata: ["ted.connections": "\(missing.joined(separator: ", "))", "ted.keys": "\(keysMissing)"])
        } catch {
            // A charon that went away is the supervisor's to notice; the next check tries again.
        }
    }

    /// The kernel lost charon's policies of ted's live tunnels (an XFRM flush): their SAs
    /// carry nothing now, so their IKE SAs are ended; the next packet of each flow meets
    /// ted's traps, is discovered again and gets a new tunnel with its policies.
    public nonisolated func policiesLost() {
        Task { await self.restartTunnels() }
    }

    func restartTunnels() async {
        let names = machine.loadedConnections.map(\.name).filter { !machine.isConnecting($0) }
        guard connected, !names.isEmpty else { return }
        logger.warning("an XFRM flush took charon's policies of ted's tunnels; setting them up again",
                       metadata: ["ted.connections": "\(names.joined(separator: ", "))"])
        for name in names { try? await controller.terminate(ike: name) }
    }

    /// charon is gone (or never came): its SAs went with it.
    private func disconnected() async {
        connected = false
        connectedSince = nil
        health?.connected.record(0)
        authentication = nil
        await perform(machine.disconnected())
    }

    // MARK: Hand-off

    /// The child ted proposes for a discovery: inside the intersection, holding P, and
    /// without what the entries above P's own entry own (a tunnel never takes traffic the
    /// policy gives elsewhere).
    func child(for discovery: Discovery) -> TrafficSelector? {
        TrafficSelector.proposal(intersection: discovery.intersection, packet: discovery.packet,
                                 excluding: configuration.policy.entries(above: discovery.localRule.index))
    }

    func handOff(_ discovery: Discovery) async {
        guard let child = child(for: discovery) else {
            logger.warning("no child selector holds the packet", metadata: ["ted.packet": "\(discovery.packet)"])
            return
        }
        let waits = node?.shouldWaitForIKE(from: discovery.peer.address, own: configuration.identity,
                                           probedAgo: discovery.rtt) == true
        await perform(machine.discovered(discovery, child: child, waits: waits, now: clock.now()))
    }

    func handle(_ event: IKEEvent) async {
        await perform(machine.event(event, now: clock.now()))
    }

    /// The machine's deadlines up to now: the timer's, or a test's after it moved its clock.
    func tick() async {
        timer = nil
        timerDeadline = nil
        await perform(machine.tick(now: clock.now()))
    }

    // MARK: Performing the machine's actions

    private func perform(_ actions: [HandoffMachine.Action]) async {
        for action in actions {
            switch action {
            case .start(let connection):
                await start(connection)
            case .stop(let name):
                try? await controller.terminate(ike: name)
                try? await controller.unloadConnection(name)
            case .unload(let name):
                try? await controller.unloadConnection(name)
            case .forget(let peer, let intersection):
                node?.forget(peer: peer)
                if let intersection { node?.forget(intersection: intersection) }
            case .refute(let peer, let intersection):
                node?.refute(peer: peer, intersection: intersection)
            case .childUp(let child, let selectors):
                hooks?.up(child, selectors)
            case .childDown(let child):
                hooks?.down(child)
            case .childRekeyed(let old, let new):
                hooks?.rekeyed(old, new)
            case .setUp(let duration, let carried):
                node?.tunnelSetUp(after: duration, carried: carried)
            case .report(let report):
                log(report)
            }
        }
        let up = machine.tunnelsUp
        if up != tunnelsUp {
            tunnelsUp = up
            node?.tunnelsUp(up)
        }
        armTimer()
    }

    /// Loads and initiates; `initiate` returns at once (the outcome is the `child-updown`
    /// event, or nothing before `initiate-timeout`, which the machine's tick fails).
    private func start(_ connection: IKEConnection) async {
        do {
            guard let authentication else { throw NotConnected() }
            try await controller.loadConnection(connection, authentication: authentication)
            try await controller.initiate(child: connection.name, ike: connection.name)
        } catch {
            await perform(machine.startFailed(connection.name, error: "\(error)"))
        }
    }

    private struct NotConnected: Error, CustomStringConvertible {
        var description: String { "not connected to the IKE daemon" }
    }

    private func armTimer() {
        let deadline = machine.nextDeadline
        guard clock.armsTimer, deadline != timerDeadline else { return }
        timer?.cancel()
        timerDeadline = deadline
        guard let deadline else { timer = nil; return }
        let delay = max(0, (deadline - clock.now()).nanoseconds)
        timer = Task {
            try? await Task.sleep(for: .nanoseconds(delay))
            if !Task.isCancelled { await self.tick() }
        }
    }

    private func log(_ report: HandoffMachine.Report) {
        switch report {
        case .waiting(let name, let peer):
            logger.info("waiting for the peer's IKE SA", metadata: ["ted.conn": "\(name)", "ted.peer": "\(peer)"])
        case .initiating(let name, let peer):
            logger.info("tunnel initiating", metadata: ["ted.conn": "\(name)", "ted.peer": "\(peer)"])
        case .up(let name, let peer):
            logger.info("tunnel up", metadata: ["ted.conn": "\(name)", "ted.peer": "\(peer)"])
        case .carried(let name, let child):
            logger.info("tunnel up under an IKE SA already there", metadata: ["ted.conn": "\(name)", "ted.child": "\(child)"])
        case .down(let name):
            logger.info("tunnel down: discovery forgotten", metadata: ["ted.conn": "\(name)"])
        case .capped(let name, let reason):
            logger.warning("tunnel not started", metadata: ["ted.conn": "\(name)", "ted.reason": "\(reason)"])
        case .failed(let name, let reason):
            logger.warning("tunnel failed", metadata: ["ted.conn": "\(name)", "ted.error": "\(reason)"])
        case .refuted(let peer, let intersection):
            logger.warning("peer refuted: its answers for this intersection are set aside for negative-ttl",
                           metadata: ["ted.peer": "\(peer)", "ted.intersection": "\(intersection)"])
        case .installFailed(let name, let peer, let charon):
            logger.warning("child SA could not be installed on this gateway; its peer is not refuted", metadata: [
                "ted.conn": "\(name)", "ted.peer": "\(peer)", "ted.charon": "\(charon)"])
        case .peerInstallFailed(let connection, let peer, let charon):
            logger.warning("a peer's child SA could not be installed on this gateway", metadata: [
                "ted.conn": "\(connection)", "ted.peer": "\(peer)", "ted.charon": "\(charon)"])
        }
    }

    /// The connections peers start IKE to (`ResponderConnections`): loaded, and the
    /// responder connections of an earlier configuration unloaded.
    private func loadResponderConnections() async throws {
        guard let authentication else { return }
        // The node's classifier; compiled here only when the hand-off runs without a node.
        let plan = ResponderConnections.plan(configuration, lookup: node?.classifier ?? CompiledPolicy(configuration.policy))
        for warning in plan.warnings { logger.warning("\(warning.message)", metadata: warning.metadata) }
        for connection in plan.connections { try await controller.loadConnection(connection, authentication: authentication) }
        responderConnections = Set(plan.connections.map(\.name))
    }
}
