import NIOCore
import TEDConfig
import TEDEngine
import TEDModel
import TEDVici

/// The hand-off's decisions without I/O, like `Responder` and `HeldPackets`: discoveries,
/// the IKE daemon's events and the clock go in, a list of actions comes out, and
/// `IKEHandoff` performs them (VICI calls, the node, the data plane's hooks, logs).
///
/// Each tunnel ted starts is a record with a state and the deadline of that state, so an
/// earlier attempt's deadline can never end a later one: waiting for the peer's IKE SA
/// (`InitiationOrder`) until `wait` passes, connecting until `initiate-timeout`, up, or
/// not installable here until `initiate-timeout`. The child SAs that are up are tracked
/// once, by unique name, with their peer and selectors: the data plane's bypasses and
/// hold sets follow the `childUp`/`childDown`/`childRekeyed` actions.
struct HandoffMachine {
    struct Settings {
        var identity: IPAddress
        var proposals: [String]
        var espProposals: [String]
        var maxConnections: Int
        var maxConnectionsPerPeer: Int
        var initiateTimeout: TimeAmount
        /// The policy this gateway initiates for: a live child it no longer permits wholly
        /// is not adopted (a reload narrowed the policy) but taken down.
        var policy: Policy

        init(identity: IPAddress, options: IKEOptions, policy: Policy) {
            self.identity = identity
            self.policy = policy
            proposals = options.proposals
            espProposals = options.espProposals
            maxConnections = options.maxConnections
            maxConnectionsPerPeer = options.maxConnectionsPerPeer
            initiateTimeout = .nanoseconds(Int64(options.initiateTimeout * 1e9))
        }
    }

    enum State: Hashable {
        /// Left to the peer, which is starting an IKE SA now, until `until`.
        case waiting(until: NIODeadline)
        case connecting(until: NIODeadline)
        /// Up; `carriedBy` names the child SA of another connection (the peer's, or an
        /// earlier tunnel's) that carries it, nil for its own.
        case up(carriedBy: String?)
        /// This host could not install its child (charon's words); kept until `until` so
        /// held packets do not retry it at once.
        case installFailed(String, until: NIODeadline)

        var deadline: NIODeadline? {
            switch self {
            case .waiting(let until), .connecting(let until), .installFailed(_, let until): until
            case .up: nil
            }
        }

        /// As `ted status` shows it.
        var text: String {
            switch self {
            case .waiting: "waiting for the peer's IKE SA"
            case .connecting: "connecting"
            case .up: "up"
            case .installFailed(let reason, _): "install failed: \(reason)"
            }
        }
    }

    struct Tunnel: Hashable {
        let name: String
        /// What charon is asked to load and initiate; for an adopted tunnel, what ted would
        /// load again for it (nil when its child has several selectors, which ted never proposes).
        let connection: IKEConnection?
        let peer: IPAddress
        /// The discovered intersection; nil for a tunnel adopted from charon after a restart.
        let intersection: Proxy?
        /// The child ted proposed; nil for an adopted tunnel.
        let child: TrafficSelector?
        /// The child's selectors as charon reports them (ted's proposal through charon's
        /// notation, or an adopted child's own).
        let selectors: [TrafficSelector]
        var state: State
        /// When the discovery was handed off (`ted_tunnel_setup_seconds`).
        let began: NIODeadline

        var record: TunnelRecord {
            TunnelRecord(name: name, peer: peer, intersection: intersection, selectors: selectors, state: state.text)
        }
    }

    /// What `IKEHandoff` must do; `report` is only for the log.
    enum Action: Hashable {
        /// Load the connection into charon and initiate its child.
        case start(IKEConnection)
        /// Terminate the connection's IKE SA (if any) and unload it.
        case stop(String)
        /// Unload the connection (its SA is gone already).
        case unload(String)
        /// Forget the peer's and the intersection's discoveries, so the next packet discovers.
        case forget(peer: IPAddress, intersection: Proxy?)
        /// IKE did not prove what the peer claimed: `Initiator.refute`.
        case refute(peer: IPAddress, intersection: Proxy)
        case childUp(String, [TrafficSelector])
        case childDown(String)
        case childRekeyed(old: String, new: String)
        /// A tunnel took `duration` from its hand-off to up.
        case setUp(TimeAmount, carried: Bool)
        case report(Report)
    }

    enum Report: Hashable {
        case waiting(String, peer: IPAddress)
        case initiating(String, peer: IPAddress)
        case up(String, peer: IPAddress)
        case carried(String, by: String)
        case down(String)
        case capped(String, reason: String)
        case failed(String, reason: String)
        case refuted(peer: IPAddress, intersection: Proxy)
        case installFailed(String, peer: IPAddress, charon: String)
        case peerInstallFailed(connection: String, peer: IPAddress, charon: String)
    }

    /// A child SA that is up: its IKE SA (connection and charon's unique id), that IKE SA's
    /// peer, and the child's selectors.
    struct LiveChild: Hashable {
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

        /// Whether an IKE SA going down is this child's (by id when both have one: a
        /// responder connection holds the IKE SAs of many peers).
        func isGone(_ event: IKEEvent) -> Bool {
            guard connection == event.connection else { return false }
            guard let id, let gone = event.ikeID else { return true }
            return id == gone
        }
    }

    static let shown = 16

    let settings: Settings
    private(set) var tunnels: [String: Tunnel] = [:]
    /// The latest hand-offs refused by a cap, and the latest peers' child SAs this host could
    /// not install (responder connections), for `ted status` (at most `shown` each).
    private(set) var capped: [TunnelRecord] = []
    private(set) var installFailures: [TunnelRecord] = []
    private(set) var children: [String: LiveChild] = [:]
    /// Tunnels carried by another connection's child SA, by that child's unique name.
    private var carried: [String: [String]] = [:]
    /// The peer of each IKE SA of ted's connections, by charon's unique id (bounded).
    private var ikePeers: [String: IPAddress] = [:]

    init(settings: Settings) {
        self.settings = settings
    }

    var tunnelsUp: Int { tunnels.values.count { if case .up = $0.state { true } else { false } } }

    /// Whether the tunnel of this connection is being set up now (initiated, no child yet).
    func isConnecting(_ name: String) -> Bool {
        if case .connecting = tunnels[name]?.state { true } else { false }
    }

    /// The connections charon should hold for ted's tunnels now: every one loaded and not
    /// left to the peer, adopted ones included.
    var loadedConnections: [IKEConnection] {
        tunnels.values.sorted { $0.name < $1.name }.compactMap { tunnel in
            if case .waiting = tunnel.state { return nil }
            return tunnel.connection
        }
    }

    /// Every record for `ted status`: tunnels by name, then the capped and the uninstallable.
    var records: [TunnelRecord] { tunnels.values.map(\.record).sorted { $0.name < $1.name } + capped + installFailures }

    /// When `tick` next has something to do.
    var nextDeadline: NIODeadline? { tunnels.values.compactMap(\.state.deadline).min() }

    /// The connection name of a (peer, child selector) pair: stable, so a second discovery
    /// needing the same child finds the first connection.
    static func connectionName(peer: IPAddress, child: TrafficSelector) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in child.description.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let peerText = "\(peer)".map { $0 == ":" || $0 == "." ? "-" : $0 }
        return "ted-\(String(peerText))-\(String(hash & 0xffff_ffff, radix: 16))"
    }

    /// What charon is asked to load for a tunnel of `child` to `peer`.
    private func connection(_ name: String, peer: IPAddress, child: TrafficSelector) -> IKEConnection {
        let text = TrafficSelectors.strongSwan(child)
        return IKEConnection(
            name: name, localAddress: "\(settings.identity)", remoteAddress: "\(peer)",
            proposals: settings.proposals, espProposals: settings.espProposals,
            localID: "\(settings.identity)", remoteID: "\(peer)",
            children: [IKEChild(name: name, localTS: [text.local], remoteTS: [text.remote])])
    }

    // MARK: Inputs

    /// A discovery to hand off, with the child ted proposes for it. `waits`: leave the IKE
    /// SA to the peer for now (`InitiationOrder`).
    mutating func discovered(_ discovery: Discovery, child: TrafficSelector, waits: Bool, now: NIODeadline) -> [Action] {
        let peer = discovery.peer.address
        let name = Self.connectionName(peer: peer, child: child)
        guard tunnels[name] == nil else { return [] }
        let text = TrafficSelectors.strongSwan(child)
        let connection = connection(name, peer: peer, child: child)
        // Through charon's notation once, so its spelling (service names, what it leaves out
        // for ICMP) cannot make the selectors it reports differ from these.
        let selectors = TrafficSelectors.selectors(local: [text.local], remote: [text.remote])
        let toPeer = tunnels.values.count { $0.peer == peer }
        let cap: String? = tunnels.count >= settings.maxConnections ? "capped: \(settings.maxConnections) connections in all"
            : toPeer >= settings.maxConnectionsPerPeer ? "capped: \(settings.maxConnectionsPerPeer) connections to this peer" : nil
        if let cap {
            capped.removeAll { $0.name == name }
            capped.append(TunnelRecord(name: name, peer: peer, intersection: discovery.intersection, selectors: selectors, state: cap))
            if capped.count > Self.shown { capped.removeFirst() }
            return [.report(.capped(name, reason: cap))]
        }
        var tunnel = Tunnel(name: name, connection: connection, peer: peer, intersection: discovery.intersection, child: child,
                            selectors: selectors, state: .connecting(until: now + settings.initiateTimeout), began: now)
        // A child already up to that peer (its IKE SA came while this discovery was out)
        // carries the packet: no second IKE SA.
        if let carrier = children.first(where: { $0.value.covers(child, peer: peer) })?.key {
            tunnels[name] = tunnel
            return carry(name, by: carrier, now: now)
        }
        if waits {
            tunnel.state = .waiting(until: now + InitiationOrder.wait)
            tunnels[name] = tunnel
            return [.report(.waiting(name, peer: peer))]
        }
        tunnels[name] = tunnel
        return [.start(connection), .report(.initiating(name, peer: peer))]
    }

    /// Loading or initiating `name` failed (or charon is not connected).
    mutating func startFailed(_ name: String, error: String) -> [Action] {
        fail(name, reason: error, refute: false)
    }

    /// Deadlines due at `now`: a wait for the peer ends in this gateway's own start, a
    /// tunnel not up in time fails (its peer refuted), an install failure is cleared.
    mutating func tick(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for tunnel in tunnels.values.sorted(by: { $0.name < $1.name }) {
            guard let deadline = tunnel.state.deadline, deadline <= now else { continue }
            switch tunnel.state {
            case .waiting:
                // Only a discovered tunnel waits, and it has its connection.
                guard let connection = tunnel.connection else { continue }
                tunnels[tunnel.name]?.state = .connecting(until: now + settings.initiateTimeout)
                actions += [.start(connection), .report(.initiating(tunnel.name, peer: tunnel.peer))]
            case .connecting:
                actions += fail(tunnel.name, reason: "no child SA within initiate-timeout", refute: true)
            case .installFailed:
                tunnels[tunnel.name] = nil
                actions += [.forget(peer: tunnel.peer, intersection: tunnel.intersection), .stop(tunnel.name)]
            case .up:
                break
            }
        }
        return actions
    }

    /// An event of charon's.
    mutating func event(_ event: IKEEvent, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        if event.connection.hasPrefix("ted-") {
            switch event.kind {
            case .childUp:
                if let child = event.child {
                    let live = LiveChild(event)
                    children[child] = live
                    actions.append(.childUp(child, live.selectors))
                    actions += carryWaiting(by: child, live, now: now)
                }
            case .childDown:
                if let child = event.child {
                    if children.removeValue(forKey: child) != nil { actions.append(.childDown(child)) }
                    actions += carriedDown(child)
                }
            case .ikeDown:
                for (child, live) in children.sorted(by: { $0.key < $1.key }) where live.isGone(event) {
                    children[child] = nil
                    actions.append(.childDown(child))
                    actions += carriedDown(child)
                }
                if let id = event.ikeID { ikePeers[id] = nil }
            case .childRekey:
                if let new = event.child, let old = event.previousChild {
                    if let live = children.removeValue(forKey: old) {
                        children[new] = live
                        actions.append(.childRekeyed(old: old, new: new))
                    }
                    if let names = carried.removeValue(forKey: old) { carried[new] = names }
                }
            case .ikeUp:
                if let id = event.ikeID, let peer = event.remoteAddress.flatMap(IPAddress.init) {
                    // Bounded whatever charon reports: only a name for `ted status`.
                    if ikePeers.count >= 1 << 16 { ikePeers = [:] }
                    ikePeers[id] = peer
                }
            case .childInstallFailed:
                return installFailed(event, now: now)
            }
        }
        let name = event.owner
        guard let tunnel = tunnels[name] else { return actions }
        switch event.kind {
        case .ikeDown, .childDown:
            tunnels[name] = nil
            actions.append(.forget(peer: tunnel.peer, intersection: tunnel.intersection))
            // An IKE SA that went down before the child came up did not prove the claim.
            if case .connecting = tunnel.state, let intersection = tunnel.intersection {
                actions.append(.refute(peer: tunnel.peer, intersection: intersection))
            }
            actions += [.unload(name), .report(.down(name))]
        case .childUp:
            tunnels[name]?.state = .up(carriedBy: nil)
            actions += [.setUp(now - tunnel.began, carried: false), .report(.up(name, peer: tunnel.peer))]
        case .ikeUp, .childRekey, .childInstallFailed:
            break
        }
        return actions
    }

    /// After a (re)connection: the child SAs charon holds (adopted: a tunnel record for each
    /// of ted's own connections) and the names of the connections it holds; ted's stale
    /// ones (not `keep`, no live child, no record) are unloaded.
    mutating func reconciled(live: [IKEEvent], connections: [String], keep: Set<String>, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for event in live {
            guard let child = event.child else { continue }
            let adopted = LiveChild(event)
            let initiated = !event.owner.hasPrefix(ResponderConnections.childPrefix)
            if initiated, !adopted.selectors.allSatisfy(settings.policy.permitsWholly) {
                actions.append(.stop(event.owner))
                continue
            }
            children[child] = adopted
            actions.append(.childUp(child, adopted.selectors))
            if initiated, tunnels[event.owner] == nil, let peer = adopted.peer {
                // Its connection as ted would load it again (charon's own may be unloaded by
                // an operator's reload): one selector pair, as every child ted proposes.
                let connection = adopted.selectors.count == 1 ? connection(event.owner, peer: peer, child: adopted.selectors[0]) : nil
                tunnels[event.owner] = Tunnel(name: event.owner, connection: connection, peer: peer, intersection: nil, child: nil,
                                              selectors: adopted.selectors, state: .up(carriedBy: nil), began: now)
            }
        }
        let liveConnections = Set(live.map(\.connection) + live.map(\.owner))
        for name in connections where name.hasPrefix("ted-") && !keep.contains(name) && !liveConnections.contains(name)
            && tunnels[name] == nil {
            actions.append(.unload(name))
        }
        return actions
    }

    /// charon is gone (or never came): its SAs went with it, and every tunnel with them.
    mutating func disconnected() -> [Action] {
        var actions: [Action] = children.keys.sorted().map { .childDown($0) }
        actions += tunnels.values.sorted { $0.name < $1.name }.map { .forget(peer: $0.peer, intersection: $0.intersection) }
        children = [:]
        ikePeers = [:]
        carried = [:]
        tunnels = [:]
        return actions
    }

    /// ted stops: its records go, charon keeps the SAs.
    mutating func stopped() {
        tunnels = [:]
        carried = [:]
    }

    // MARK: Steps

    private mutating func fail(_ name: String, reason: String, refute: Bool) -> [Action] {
        guard let tunnel = tunnels.removeValue(forKey: name) else { return [] }
        var actions: [Action] = [.report(.failed(name, reason: reason)), .forget(peer: tunnel.peer, intersection: tunnel.intersection)]
        if refute, let intersection = tunnel.intersection {
            actions += [.refute(peer: tunnel.peer, intersection: intersection),
                        .report(.refuted(peer: tunnel.peer, intersection: intersection))]
        }
        return actions + [.stop(name)]
    }

    /// The tunnel `name` is carried by the live child SA `child` of another connection.
    private mutating func carry(_ name: String, by child: String, now: NIODeadline) -> [Action] {
        guard let tunnel = tunnels[name] else { return [] }
        tunnels[name]?.state = .up(carriedBy: child)
        carried[child, default: []].append(name)
        return [.setUp(now - tunnel.began, carried: true), .report(.carried(name, by: child))]
    }

    /// A child SA came up: every tunnel waiting for its peer whose proposal it covers is up with it.
    private mutating func carryWaiting(by child: String, _ live: LiveChild, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        for tunnel in tunnels.values.sorted(by: { $0.name < $1.name }) {
            guard case .waiting = tunnel.state, let proposal = tunnel.child, live.covers(proposal, peer: tunnel.peer) else { continue }
            actions += carry(tunnel.name, by: child, now: now)
        }
        return actions
    }

    /// The tunnels a child carried went down with it: their discoveries are forgotten (the
    /// peer proved its claim: no refutation), so the next packet rediscovers.
    private mutating func carriedDown(_ child: String) -> [Action] {
        var actions: [Action] = []
        for name in carried.removeValue(forKey: child) ?? [] {
            guard let tunnel = tunnels.removeValue(forKey: name) else { continue }
            actions += [.forget(peer: tunnel.peer, intersection: tunnel.intersection), .report(.down(name))]
        }
        return actions
    }

    /// This host could not install a child SA it negotiated (its kernel's or libipsec's
    /// refusal). Nothing the peer did: it is not refuted. A discovered tunnel keeps its
    /// record for `initiate-timeout` (so held packets do not retry it at once), then goes,
    /// with its discovery, so a later packet tries again.
    private mutating func installFailed(_ event: IKEEvent, now: NIODeadline) -> [Action] {
        let reason = event.reason ?? "child SA not installed"
        let peer = event.ikeID.flatMap { ikePeers[$0] }
        guard let name = failedTunnel(event, peer: peer), let tunnel = tunnels[name] else {
            // A peer's child under a responder connection (no record of ours): shown with the
            // latest others. Only charon's route line names the selectors; it is kept.
            guard event.connection.hasPrefix(ResponderConnections.namePrefix) else { return [] }
            let peer = peer ?? IPAddress(v4: 0)
            let state = "install failed: \(reason)"
            if let shown = installFailures.first(where: { $0.name == event.connection && $0.peer == peer }),
               shown.state.contains(" === "), !state.contains(" === ") { return [] }
            installFailures.removeAll { $0.name == event.connection && $0.peer == peer }
            installFailures.append(TunnelRecord(name: event.connection, peer: peer, intersection: nil, selectors: [], state: state))
            if installFailures.count > Self.shown { installFailures.removeFirst() }
            return [.report(.peerInstallFailed(connection: event.connection, peer: peer, charon: reason))]
        }
        tunnels[name]?.state = .installFailed(reason, until: now + settings.initiateTimeout)
        return [.report(.installFailed(name, peer: tunnel.peer, charon: reason))]
    }

    /// The connecting tunnel a failure is about. charon may put a new child under an IKE SA
    /// of another connection to the same peer, so the IKE SA's name is not enough: the
    /// selectors charon's route line names decide; else the IKE SA's own connection; else
    /// the one tunnel connecting to that IKE SA's peer.
    private func failedTunnel(_ event: IKEEvent, peer: IPAddress?) -> String? {
        let connecting = tunnels.values.filter { if case .connecting = $0.state { true } else { false } }
        if let named = event.reason.flatMap(Self.routeSelectors) {
            return connecting.first { $0.selectors == named }?.name
        }
        if let tunnel = tunnels[event.connection], case .connecting = tunnel.state { return tunnel.name }
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
}
