import Logging
import TEDConfig
import TEDEngine
import TEDModel
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
public actor IKEHandoff: DaemonPlugin {
    private let controller: any IKEController
    private let configuration: Configuration
    private let options: IKEOptions
    private let logger: Logger
    private var node: TEDNode?
    private var records: [String: TunnelRecord] = [:] {
        didSet {
            let up = records.values.count { $0.state == "up" }
            if up != tunnelsUp { tunnelsUp = up; node?.tunnelsUp(up) }
        }
    }
    /// How many records are up, as `ted_tunnels` last showed.
    private var tunnelsUp = 0
    /// The latest hand-offs refused by a cap, for `ted status` (at most `cappedShown`).
    private var capped: [TunnelRecord] = []
    /// The latest peers' child SAs this host could not install (responder connections),
    /// for `ted status` (at most `cappedShown`).
    private var installFailures: [TunnelRecord] = []
    /// The peer of each IKE SA of ted's connections, by charon's unique id.
    private var ikePeers: [String: IPAddress] = [:]
    private static let cappedShown = 16
    private var supervisor: Task<Void, Never>?
    private var connected = false
    /// What ted's connections authenticate with, as loaded into charon by `connect`; nil
    /// while not connected.
    private var authentication: IKEAuthentication?
    /// Child SAs of ted's connections that are up, by unique child name.
    private var children: [String: LiveChild] = [:]
    /// A child SA that is up: the IKE SA it lives under (its connection and charon's unique
    /// id), that IKE SA's peer, and the child's selectors.
    private struct LiveChild: Hashable {
        let connection: String
        let id: String?
        let peer: IPAddress?
        let selectors: [TrafficSelector]

        init(_ event: IKEEvent) {
            connection = event.connection
            id = event.ikeID
            peer = event.remoteAddress.flatMap(IPAddress.init)
            selectors = TrafficSelectors.selectors(local: event.localTS, remote: event.remoteTS)
        }

        /// Whether it carries everything `child` would, to the same peer.
        func covers(_ child: TrafficSelector, peer: IPAddress) -> Bool {
            self.peer == peer && selectors.contains { $0.contains(child) }
        }

        /// Whether an IKE SA going down is this one (by id when both have one: a connection
        /// such as `ted-responder` holds the IKE SAs of many peers).
        func isGone(_ event: IKEEvent) -> Bool {
            guard connection == event.connection else { return false }
            guard let id, let gone = event.ikeID else { return true }
            return id == gone
        }
    }
    /// Which hand-off of a connection name is the current one: a deadline set for an
    /// earlier attempt under the same name must not fail a later one.
    private var attempts: [String: Attempt] = [:]
    private struct Attempt {
        let id: UInt64
        /// When the discovery was handed off: the start of `ted_tunnel_setup_seconds`.
        let began = ContinuousClock.now
    }
    private var lastAttempt: UInt64 = 0
    /// Records waiting for their peer's IKE SA (`InitiationOrder`), by connection name: the
    /// connection to start if none comes, and the selectors a peer's child must cover.
    private var waiting: [String: WaitingChild] = [:]
    private struct WaitingChild {
        let connection: IKEConnection
        let selectors: TrafficSelector
    }
    /// Records carried by a peer's child SA, by that child's unique name.
    private var borrowed: [String: [String]] = [:]
    private static let waitingForPeer = "waiting for the peer's IKE SA"
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
                childHooks: ChildHooks? = nil) {
        self.hooks = childHooks
        self.controller = controller
        self.configuration = configuration
        self.options = options
        self.logger = logger
    }

    /// The discovery callback: safe to call from the event loop.
    public nonisolated func discovered(_ discovery: Discovery) {
        Task { await self.handOff(discovery) }
    }

    /// Never fails: charon may not be up yet. The supervisor keeps trying.
    public func start(node: TEDNode) async throws {
        self.node = node
        supervisor = Task { await self.supervise() }
    }

    /// Leaves ted's connections and their SAs in charon: tunnels that are up keep carrying
    /// traffic while ted is stopped, and the next ted adopts them (`ted cleanup` removes them).
    public func stop() async {
        supervisor?.cancel()
        records = [:]
        attempts = [:]
        waiting = [:]
        borrowed = [:]
        await controller.close()
    }

    public func tunnels() async -> [TunnelRecord] {
        records.values.sorted { $0.name < $1.name } + capped + installFailures
    }

    /// Whether ted holds a working connection to the IKE daemon now.
    public var isConnected: Bool { connected }

    /// The connection name of a (peer, child selector) pair: stable, so a second discovery
    /// needing the same child finds the first connection.
    public static func connectionName(peer: IPAddress, child: TrafficSelector) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in child.description.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let peerText = "\(peer)".map { $0 == ":" || $0 == "." ? "-" : $0 }
        return "ted-\(String(peerText))-\(String(hash & 0xffff_ffff, radix: 16))"
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
                disconnected()
                logger.warning("the IKE daemon went away; its tunnels are gone, traps keep their traffic blocked",
                               metadata: ["ted.vici": "\(options.vici)"])
            } catch {
                let text = "\(error)"
                if text != lastFailure {
                    logger.warning("cannot use the IKE daemon yet; retrying", metadata: ["ted.error": "\(text)"])
                    lastFailure = text
                }
                disconnected()
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
            authentication = .pubkey(try await controller.loadCertificates(certificate: certificate, privateKey: key, caCertificate: ca))
        }
        let events = try await controller.events()
        if options.respond { try await loadResponderConnections() }
        try await reconcile()
        connected = true
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
        for event in live {
            guard let child = event.child else { continue }
            let live = LiveChild(event)
            children[child] = live
            hooks?.up(child, live.selectors)
            if !event.owner.hasPrefix("ted-r"), records[event.owner] == nil,
               let peer = event.remoteAddress.flatMap(IPAddress.init) {
                records[event.owner] = TunnelRecord(name: event.owner, peer: peer, intersection: nil,
                                                    localTS: event.localTS, remoteTS: event.remoteTS, state: "up")
            }
        }
        let liveConnections = Set(live.map(\.connection) + live.map(\.owner))
        for name in try await controller.connectionNames()
        where name.hasPrefix("ted-") && !responderConnections.contains(name) && !liveConnections.contains(name) && records[name] == nil {
            try? await controller.unloadConnection(name)
            logger.info("unloaded a stale connection", metadata: ["ted.conn": "\(name)"])
        }
        hooks?.reconciled()
        if !live.isEmpty { logger.info("adopted live child SAs", metadata: ["ted.children": "\(live.count)"]) }
    }

    /// charon is gone (or never came): its SAs went with it.
    private func disconnected() {
        connected = false
        authentication = nil
        for child in children.keys { hooks?.down(child) }
        children = [:]
        ikePeers = [:]
        for record in records.values { forgetDiscovery(record) }
        records = [:]
        attempts = [:]
        waiting = [:]
        borrowed = [:]
    }

    // MARK: Hand-off

    /// The child ted proposes for a discovery: inside the intersection, holding P, and
    /// without what the entries above P's own entry own (a tunnel never takes traffic the
    /// policy gives elsewhere).
    func child(for discovery: Discovery) -> TrafficSelector? {
        TrafficSelector.proposal(intersection: discovery.intersection, packet: discovery.packet,
                                 excluding: configuration.policy.entries(above: discovery.localRule.index))
    }

    private func handOff(_ discovery: Discovery) async {
        guard let child = child(for: discovery) else {
            logger.warning("no child selector holds the packet", metadata: ["ted.packet": "\(discovery.packet)"])
            return
        }
        let name = Self.connectionName(peer: discovery.peer.address, child: child)
        if records[name] != nil { return }
        let selectors = TrafficSelectors.strongSwan(child)
        let toPeer = records.values.count { $0.peer == discovery.peer.address }
        let cap: String? = records.count >= options.maxConnections ? "capped: \(options.maxConnections) connections in all"
            : toPeer >= options.maxConnectionsPerPeer ? "capped: \(options.maxConnectionsPerPeer) connections to this peer" : nil
        if let cap {
            capped.removeAll { $0.name == name }
            capped.append(TunnelRecord(name: name, peer: discovery.peer.address, intersection: discovery.intersection,
                                       localTS: [selectors.local], remoteTS: [selectors.remote], state: cap))
            if capped.count > Self.cappedShown { capped.removeFirst() }
            logger.warning("tunnel not started", metadata: ["ted.conn": "\(name)", "ted.reason": "\(cap)"])
            return
        }
        let connection = IKEConnection(
            name: name, localAddress: "\(configuration.identity)", remoteAddress: "\(discovery.peer.address)",
            proposals: options.proposals, espProposals: options.espProposals,
            localID: "\(configuration.identity)", remoteID: "\(discovery.peer.address)",
            children: [IKEChild(name: name, localTS: [selectors.local], remoteTS: [selectors.remote])])
        lastAttempt += 1
        let attempt = lastAttempt
        attempts[name] = Attempt(id: attempt)
        let waits = node?.shouldWaitForIKE(from: discovery.peer.address, own: configuration.identity,
                                           probedAgo: discovery.rtt) == true
        records[name] = TunnelRecord(name: name, peer: discovery.peer.address, intersection: discovery.intersection,
                                     localTS: [selectors.local], remoteTS: [selectors.remote],
                                     state: waits ? Self.waitingForPeer : "connecting")
        // A child already up to that peer (its IKE SA came while this discovery was out)
        // carries the packet: no second IKE SA.
        if let carrier = children.first(where: { $0.value.covers(child, peer: discovery.peer.address) })?.key {
            return borrow(carrier, for: name)
        }
        guard waits else { return await initiate(connection, attempt: attempt) }
        // The peer is starting IKE towards this gateway now (`InitiationOrder`): its child
        // may cover this one, and one IKE SA per pair is enough.
        waiting[name] = WaitingChild(connection: connection, selectors: child)
        logger.info("waiting for the peer's IKE SA", metadata: ["ted.conn": "\(name)", "ted.peer": "\(discovery.peer.address)"])
        Task {
            try? await Task.sleep(for: .nanoseconds(InitiationOrder.wait.nanoseconds))
            await self.stopWaiting(name, attempt: attempt)
        }
    }

    /// Loads the connection of a record and starts it; `initiate-timeout` later, a record
    /// still connecting fails.
    private func initiate(_ connection: IKEConnection, attempt: UInt64) async {
        let name = connection.name
        records[name]?.state = "connecting"
        let child = connection.children[0]
        let metadata: Logger.Metadata = ["ted.conn": "\(name)", "ted.peer": "\(connection.remoteAddress)",
                                         "ted.local_ts": "\(child.localTS.joined(separator: ","))",
                                         "ted.remote_ts": "\(child.remoteTS.joined(separator: ","))"]
        guard let authentication else {
            await fail(name, metadata.merging(["ted.error": "not connected to the IKE daemon"]) { $1 })
            return
        }
        do {
            try await controller.loadConnection(connection, authentication: authentication)
            try await controller.initiate(child: name, ike: name)
            logger.info("tunnel initiating", metadata: metadata)
            let deadline = options.initiateTimeout
            Task {
                try? await Task.sleep(for: .seconds(deadline))
                await self.expireIfNotUp(name, attempt: attempt)
            }
        } catch {
            await fail(name, metadata.merging(["ted.error": "\(error)"]) { $1 })
        }
    }

    /// The wait for the peer's IKE SA is over and no child of its covered this record's:
    /// this gateway starts its own.
    private func stopWaiting(_ name: String, attempt: UInt64) async {
        guard attempts[name]?.id == attempt, let pending = waiting.removeValue(forKey: name),
              records[name]?.state == Self.waitingForPeer else { return }
        await initiate(pending.connection, attempt: attempt)
    }

    /// A child SA came up under one of ted's connections: a record waiting for its peer
    /// whose selectors it covers is up with it, and goes down with it.
    private func coverWaiting(by child: String, _ live: LiveChild) {
        for (name, pending) in waiting {
            guard let peer = records[name]?.peer, live.covers(pending.selectors, peer: peer) else { continue }
            waiting[name] = nil
            borrow(child, for: name)
        }
    }

    /// The record `name` is carried by the live child SA `child` (of the peer's IKE SA, or
    /// another of ted's): no IKE SA of its own.
    private func borrow(_ child: String, for name: String) {
        records[name]?.state = "up"
        setupDone(name, carried: true)
        borrowed[child, default: []].append(name)
        logger.info("tunnel up under an IKE SA already there", metadata: ["ted.conn": "\(name)", "ted.child": "\(child)"])
    }

    /// How long a record took from its hand-off to up, for `ted_tunnel_setup_seconds`.
    private func setupDone(_ name: String, carried: Bool) {
        guard let began = attempts[name]?.began else { return }
        node?.tunnelSetUp(after: ContinuousClock.now - began, carried: carried)
    }

    /// The records a peer's child carried went down with it: their discoveries are
    /// forgotten (the peer proved its claim: no refutation), so the next packet rediscovers.
    private func borrowedChildDown(_ child: String) {
        for name in borrowed.removeValue(forKey: child) ?? [] {
            guard let record = records.removeValue(forKey: name) else { continue }
            attempts[name] = nil
            forgetDiscovery(record)
            logger.info("tunnel down: discovery forgotten", metadata: ["ted.conn": "\(name)"])
        }
    }

    /// A tunnel that did not come up in time fails: its discovery is forgotten, its
    /// connection unloaded, so the next packet starts again. The peer did not prove its
    /// claim (an identity or CA charon refused, address blocks that leave the selectors
    /// out, or no answer): it is refuted for that intersection, so the next discovery does
    /// not take it again but waits for another responder.
    private func expireIfNotUp(_ name: String, attempt: UInt64) async {
        guard attempts[name]?.id == attempt, records[name]?.state == "connecting" else { return }
        await fail(name, ["ted.conn": "\(name)", "ted.error": "no child SA within initiate-timeout"], refute: true)
    }

    private func fail(_ name: String, _ metadata: Logger.Metadata, refute: Bool = false) async {
        guard let record = records.removeValue(forKey: name) else { return }
        attempts[name] = nil
        logger.warning("tunnel failed", metadata: metadata)
        forgetDiscovery(record)
        if refute, let intersection = record.intersection {
            node?.refute(peer: record.peer, intersection: intersection)
            logger.warning("peer refuted: its answers for this intersection are set aside for negative-ttl",
                           metadata: ["ted.peer": "\(record.peer)", "ted.intersection": "\(intersection)"])
        }
        try? await controller.terminate(ike: name)
        try? await controller.unloadConnection(name)
    }

    private func forgetDiscovery(_ record: TunnelRecord) {
        node?.forget(peer: record.peer)
        if let intersection = record.intersection { node?.forget(intersection: intersection) }
    }

    private func handle(_ event: IKEEvent) async {
        if event.connection.hasPrefix("ted-") {
            switch event.kind {
            case .childUp:
                if let child = event.child {
                    let live = LiveChild(event)
                    children[child] = live
                    hooks?.up(child, live.selectors)
                    coverWaiting(by: child, live)
                }
            case .childDown:
                if let child = event.child, children.removeValue(forKey: child) != nil { hooks?.down(child) }
                if let child = event.child { borrowedChildDown(child) }
            case .ikeDown:
                for (child, sa) in children where sa.isGone(event) {
                    children[child] = nil
                    hooks?.down(child)
                    borrowedChildDown(child)
                }
            case .childRekey:
                if let new = event.child, let old = event.previousChild, let sa = children.removeValue(forKey: old) {
                    children[new] = sa
                    hooks?.rekeyed(old, new)
                }
                if let new = event.child, let old = event.previousChild, let names = borrowed.removeValue(forKey: old) {
                    borrowed[new] = names
                }
            case .ikeUp:
                if let id = event.ikeID, let peer = event.remoteAddress.flatMap(IPAddress.init) {
                    // Bounded whatever charon reports: only a name for `ted status`.
                    if ikePeers.count >= 1 << 16 { ikePeers = [:] }
                    ikePeers[id] = peer
                }
            case .childInstallFailed:
                await installFailed(event)
                return
            }
            if event.kind == .ikeDown, let id = event.ikeID { ikePeers[id] = nil }
        }
        let name = event.owner
        guard let record = records[name] else { return }
        switch event.kind {
        case .ikeDown, .childDown:
            records[name] = nil
            attempts[name] = nil
            forgetDiscovery(record)
            // An IKE SA that went down before the child came up did not prove the claim.
            if record.state == "connecting", let intersection = record.intersection {
                node?.refute(peer: record.peer, intersection: intersection)
            }
            try? await controller.unloadConnection(name)
            logger.info("tunnel down: discovery forgotten", metadata: ["ted.conn": "\(name)"])
        case .childUp:
            records[name]?.state = "up"
            setupDone(name, carried: false)
            logger.info("tunnel up", metadata: ["ted.conn": "\(name)", "ted.peer": "\(record.peer)"])
        case .ikeUp, .childRekey, .childInstallFailed:
            break
        }
    }

    /// This host could not install a child SA it negotiated (its kernel's or libipsec's
    /// refusal: a route libipsec needs, policies, SAs). Nothing the peer did: it is not
    /// refuted. Logged once, naming the selectors; `ted status` shows it. A discovered
    /// tunnel keeps its record for `initiate-timeout` (so held packets do not retry it at
    /// once), then goes, with its discovery, so a later packet tries again.
    private func installFailed(_ event: IKEEvent) async {
        let reason = "install failed: \(event.reason ?? "child SA not installed")"
        let peer = event.ikeID.flatMap { ikePeers[$0] }
        guard let name = failedRecord(event, peer: peer), let record = records[name] else {
            // A peer's child under a responder connection (no record of ours): shown with the
            // latest others. Only charon's route line names the selectors; it is kept.
            guard event.connection.hasPrefix(ResponderConnections.namePrefix) else { return }
            let peer = peer ?? IPAddress(v4: 0)
            if let shown = installFailures.first(where: { $0.name == event.connection && $0.peer == peer }),
               shown.state.contains(" === "), !reason.contains(" === ") { return }
            installFailures.removeAll { $0.name == event.connection && $0.peer == peer }
            installFailures.append(TunnelRecord(name: event.connection, peer: peer, intersection: nil, localTS: [], remoteTS: [],
                                                state: reason))
            if installFailures.count > Self.cappedShown { installFailures.removeFirst() }
            logger.warning("a peer's child SA could not be installed on this gateway", metadata: [
                "ted.conn": "\(event.connection)", "ted.peer": "\(peer)", "ted.charon": "\(event.reason ?? "")"])
            return
        }
        records[name]?.state = reason
        logger.warning("child SA could not be installed on this gateway; its peer is not refuted", metadata: [
            "ted.conn": "\(name)", "ted.peer": "\(record.peer)", "ted.local_ts": "\(record.localTS.joined(separator: ","))",
            "ted.remote_ts": "\(record.remoteTS.joined(separator: ","))", "ted.charon": "\(event.reason ?? "")"])
        let attempt = attempts[name]?.id, delay = options.initiateTimeout
        Task {
            try? await Task.sleep(for: .seconds(delay))
            await self.clearInstallFailure(name, attempt: attempt)
        }
    }

    /// The connecting tunnel a failure is about. charon may put a new child under an IKE SA
    /// of another connection to the same peer, so the IKE SA's name is not enough: the
    /// selectors charon's route line names decide; else the IKE SA's own connection; else
    /// the one tunnel connecting to that IKE SA's peer.
    private func failedRecord(_ event: IKEEvent, peer: IPAddress?) -> String? {
        let connecting = records.values.filter { $0.state == "connecting" }
        if let named = event.reason.flatMap(Self.routeSelectors) {
            return connecting.first { TrafficSelectors.selectors(local: $0.localTS, remote: $0.remoteTS) == named }?.name
        }
        if let record = records[event.connection], record.state == "connecting" { return record.name }
        let toPeer = connecting.filter { $0.peer == peer }
        return toPeer.count == 1 ? toPeer[0].name : nil
    }

    /// The selectors of charon's "error installing route with policy L === R out".
    static func routeSelectors(_ line: String) -> [TrafficSelector]? {
        let words = line.split(separator: " ")
        guard let arrow = words.firstIndex(of: "==="), arrow > 0, arrow + 1 < words.count else { return nil }
        let selectors = TrafficSelectors.selectors(local: [String(words[arrow - 1])], remote: [String(words[arrow + 1])])
        return selectors.isEmpty ? nil : selectors
    }

    private func clearInstallFailure(_ name: String, attempt: UInt64?) async {
        guard attempts[name]?.id == attempt, let record = records[name], record.state.hasPrefix("install failed") else { return }
        records[name] = nil
        attempts[name] = nil
        forgetDiscovery(record)
        try? await controller.terminate(ike: name)
        try? await controller.unloadConnection(name)
    }

    /// The connections peers start IKE to (`ResponderConnections`): loaded, and the
    /// responder connections of an earlier configuration unloaded.
    private func loadResponderConnections() async throws {
        guard let authentication else { return }
        let pin = if case .psk = authentication { true } else { false }
        // The node's classifier; compiled here only when the hand-off runs without a node.
        let plan = ResponderConnections.plan(configuration, lookup: node?.classifier ?? CompiledPolicy(configuration.policy), pinIdentity: pin)
        for warning in plan.warnings { logger.warning("\(warning.message)", metadata: warning.metadata) }
        for connection in plan.connections { try await controller.loadConnection(connection, authentication: authentication) }
        responderConnections = Set(plan.connections.map(\.name))
    }
}
