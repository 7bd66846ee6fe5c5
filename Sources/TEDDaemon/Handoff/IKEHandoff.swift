import Logging
import TEDConfig
import TEDEngine
import TEDModel
import TEDWire

/// Hands discoveries to the IKE daemon (patent: "a secure tunnel is ready to be established").
///
/// On a discovery: one connection per (peer, intersection), never a duplicate, whose child
/// selectors are the intersection, then `initiate`. When the IKE or child SA goes down the
/// discovery is forgotten, so the next packet rediscovers. As responder, one `%any`
/// connection per permit entry is loaded at start-up, so the same policy drives TED and IKE.
public actor IKEHandoff: DaemonPlugin {
    private let controller: any IKEController
    private let configuration: Configuration
    private let options: IKEOptions
    private let logger: Logger
    private var node: TEDNode?
    private var records: [String: TunnelRecord] = [:]
    private var responderConnections: [String] = []
    private var eventTask: Task<Void, Never>?
    /// Child SAs of ted's connections that are up, by unique child name, with their connection.
    private var children: [String: String] = [:]

    /// Told when a child SA of one of ted's connections comes up or goes down (both roles).
    public struct ChildHooks: Sendable {
        public var up: @Sendable (_ child: String, _ localTS: [String], _ remoteTS: [String]) -> Void
        public var down: @Sendable (_ child: String) -> Void
        public init(up: @escaping @Sendable (String, [String], [String]) -> Void, down: @escaping @Sendable (String) -> Void) {
            self.up = up
            self.down = down
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

    public func start(node: TEDNode) async throws {
        self.node = node
        switch options.authentication {
        case .psk(let secret): try await controller.loadSharedKey(secret)
        case .pubkey(let certificate, let key, let ca):
            try await controller.loadCertificates(certificate: certificate, privateKey: key, caCertificate: ca)
        }
        let events = try await controller.events()
        eventTask = Task { [weak self] in
            for await event in events { await self?.handle(event) }
        }
        if options.respond { try await loadResponderConnections() }
    }

    public func stop() async {
        eventTask?.cancel()
        for child in children.keys { hooks?.down(child) }
        children = [:]
        for name in Array(records.keys) + responderConnections {
            try? await controller.unloadConnection(name)
        }
        records = [:]
        responderConnections = []
        await controller.close()
    }

    public func tunnels() async -> [TunnelRecord] {
        records.values.sorted { $0.name < $1.name }
    }

    /// The connection name of a (peer, intersection) pair: stable, so a second discovery
    /// of the same pair finds the first connection.
    public static func connectionName(peer: IPAddress, intersection: Proxy) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in intersection.description.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let peerText = "\(peer)".map { $0 == ":" || $0 == "." ? "-" : $0 }
        return "ted-\(String(peerText))-\(String(hash & 0xffff_ffff, radix: 16))"
    }

    private func handOff(_ discovery: Discovery) async {
        let name = Self.connectionName(peer: discovery.peer.address, intersection: discovery.intersection)
        if let existing = records[name], existing.state != "failed" { return }
        let selectors = TrafficSelectors.initiatorChild(intersection: discovery.intersection, packet: discovery.packet)
        let connection = IKEConnection(
            name: name, localAddress: "\(configuration.identity)", remoteAddress: "\(discovery.peer.address)",
            proposals: options.proposals, espProposals: options.espProposals,
            localID: "\(configuration.identity)", remoteID: "\(discovery.peer.address)",
            children: [IKEChild(name: name, localTS: [selectors.local], remoteTS: [selectors.remote])])
        records[name] = TunnelRecord(name: name, peer: discovery.peer.address, intersection: discovery.intersection,
                                     localTS: [selectors.local], remoteTS: [selectors.remote], state: "connecting")
        let metadata: Logger.Metadata = ["ted.conn": "\(name)", "ted.peer": "\(discovery.peer.address)",
                                         "ted.local_ts": "\(selectors.local)", "ted.remote_ts": "\(selectors.remote)"]
        do {
            try await controller.loadConnection(connection, authentication: authentication)
            try await controller.initiate(child: name, ike: name, timeoutMilliseconds: Int(options.initiateTimeout * 1000))
            records[name]?.state = "up"
            logger.info("tunnel up", metadata: metadata)
        } catch {
            records[name]?.state = "failed"
            logger.warning("tunnel failed", metadata: metadata.merging(["ted.error": "\(error)"]) { $1 })
            node?.forget(peer: discovery.peer.address)
            try? await controller.unloadConnection(name)
        }
    }

    private var authentication: IKEAuthentication {
        switch options.authentication {
        case .psk: .psk
        case .pubkey(let certificate, _, _): .pubkey(certificate: certificate)
        }
    }

    private func handle(_ event: IKEEvent) async {
        if event.connection.hasPrefix("ted-") {
            switch event.kind {
            case .childUp:
                if let child = event.child {
                    children[child] = event.connection
                    hooks?.up(child, event.localTS, event.remoteTS)
                }
            case .childDown:
                if let child = event.child, children.removeValue(forKey: child) != nil { hooks?.down(child) }
            case .ikeDown:
                for (child, connection) in children where connection == event.connection {
                    children[child] = nil
                    hooks?.down(child)
                }
            case .ikeUp:
                break
            }
        }
        guard let record = records[event.connection] else { return }
        switch event.kind {
        case .ikeDown, .childDown:
            records[event.connection] = nil
            node?.forget(peer: record.peer)
            node?.forget(intersection: record.intersection)
            try? await controller.unloadConnection(event.connection)
            logger.info("tunnel down: discovery forgotten", metadata: ["ted.conn": "\(event.connection)"])
        case .childUp:
            records[event.connection]?.state = "up"
        case .ikeUp:
            break
        }
    }

    /// One `%any` connection whose children are the permit entries (per IP version).
    private func loadResponderConnections() async throws {
        var children: [IKEChild] = []
        for rule in configuration.policy.permits {
            let families: [IPAddress.Family] = rule.entry.family.map { [$0] } ?? [.v4, .v6]
            for family in families {
                guard let selectors = TrafficSelectors.responderChild(entry: rule.entry, family: family) else {
                    logger.warning("policy entry not expressible as IKE selectors; peers cannot start IKE for it",
                                   metadata: ["ted.entry": "\(rule.index)"])
                    continue
                }
                children.append(IKEChild(name: "ted-r\(rule.index)-\(family == .v4 ? "v4" : "v6")",
                                         localTS: [selectors.local], remoteTS: [selectors.remote]))
            }
        }
        guard !children.isEmpty else { return }
        let name = "ted-responder"
        let connection = IKEConnection(
            name: name, localAddress: "\(configuration.identity)", remoteAddress: "%any",
            proposals: options.proposals, espProposals: options.espProposals,
            localID: "\(configuration.identity)", remoteID: "%any", children: children)
        try await controller.loadConnection(connection, authentication: authentication)
        responderConnections.append(name)
    }
}
