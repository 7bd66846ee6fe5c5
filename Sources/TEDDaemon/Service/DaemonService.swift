import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel
import TEDWire

/// Something the daemon runs beside discovery: the data plane, the IKE hand-off.
///
/// `start` is called once the TED socket is bound, `stop` on shutdown in reverse order.
public protocol DaemonPlugin: Sendable {
    /// Before the TED socket binds: what must hold even if the rest fails to start.
    func prepare() async throws
    func start(node: TEDNode) async throws
    func stop() async
    /// Tunnels to list in `ted status`.
    func tunnels() async -> [TunnelRecord]
    /// First packets held now, for `ted status` (nil: this plugin holds none).
    func held() -> HeldStatus?
    /// How ESP is carried, once `prepare` ran (nil: not this plugin's to say).
    var dataplaneMode: DataplaneMode? { get }
    /// The IKE daemon's connection, for `ted status` (nil: this plugin does not use it).
    func charon() async -> CharonStatus?
}

extension DaemonPlugin {
    public func prepare() async throws {}
    public func tunnels() async -> [TunnelRecord] { [] }
    public func held() -> HeldStatus? { nil }
    public var dataplaneMode: DataplaneMode? { nil }
    public func charon() async -> CharonStatus? { nil }
}

/// `ted daemon`: the TED socket, the control socket, the metrics endpoint and plugins,
/// until SIGTERM/SIGINT (through swift-service-lifecycle).
public struct DaemonService: Service {
    let configuration: Configuration
    let logger: Logger
    let events: DiscoveryEvents
    let probeSender: ProbeSender?
    let plugins: [any DaemonPlugin]

    public init(configuration: Configuration, logger: Logger, events: DiscoveryEvents = DiscoveryEvents(),
                probeSender: ProbeSender? = nil, plugins: [any DaemonPlugin] = []) {
        self.configuration = configuration
        self.logger = logger
        self.events = events
        self.probeSender = probeSender
        self.plugins = plugins
    }

    public func run() async throws {
        for plugin in plugins { try await plugin.prepare() }
        let node = try await TEDNode.start(configuration: configuration, logger: logger, events: events,
                                           probeSender: probeSender)
        node.metrics.addSource(HealthMetrics.source(plugins: plugins))
        logger.info("ted listening", metadata: [
            "ted.listen": "\(configuration.listen.address):\(node.port)", "ted.identity": "\(configuration.tedIdentity)",
            "ted.policy_entries": "\(configuration.policy.rules.count)",
        ])
        var started: [any DaemonPlugin] = []
        do {
            for plugin in plugins {
                try await plugin.start(node: node)
                started.append(plugin)
            }
            try await serve(node: node)
        } catch {
            logger.error("ted stopping on error", metadata: ["ted.error": "\(error)"])
            for plugin in started.reversed() { await plugin.stop() }
            await node.stop()
            throw error
        }
        for plugin in started.reversed() { await plugin.stop() }
        await node.stop()
        logger.info("ted stopped")
    }

    private func serve(node: TEDNode) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var groupID: gid_t?
        if let name = configuration.controlGroup {
            guard let id = LocalSystem.groupID(named: name) else { throw ControlSocketError("control-group \(name) does not exist") }
            groupID = id
        }
        try StartupFailure.makeRuntimeDirectory(for: configuration.controlSocket)
        let controlGuard = ConnectionGuard(maxConnections: 64, lifetime: .seconds(60), checkCredentials: true, groupID: groupID)
        let control = try await LineServer.bind(group: group, unixPath: configuration.controlSocket,
                                                mode: groupID == nil ? 0o600 : 0o660, groupID: groupID,
                                                guard: controlGuard)
        let metricsServer: (any Channel)?
        do {
            metricsServer = try await configuration.metrics.asyncMap {
                try await MetricsServer.bind(group: group, host: "\($0.address)", port: Int($0.port), registry: node.metrics,
                                             guard: ConnectionGuard(maxConnections: MetricsServer.maxConnections,
                                                                    lifetime: MetricsServer.lifetime, checkCredentials: false))
            }
        } catch {
            try? await control.channel.close()
            throw error
        }
        let plugins = self.plugins
        let identity = configuration.tedIdentity
        let controlServer = LineServer(connectionGuard: controlGuard) { request in
            await ControlProtocol.answer(request, node: node, identity: identity, plugins: plugins)
        }
        let logger = self.logger
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask { try? await controlServer.serve(control) }
            tasks.addTask {
                // A TED socket that closes by itself is fatal: exit non-zero so the service
                // manager restarts ted (the kernel's traps keep traffic blocked meanwhile).
                if let reason = await node.closed() {
                    logger.critical("the TED socket was lost", metadata: ["ted.error": "\(reason)"])
                    try? await control.channel.close()
                    try? await metricsServer?.close()
                    throw DaemonError.socketLost(reason)
                }
            }
            tasks.addTask {
                try? await gracefulShutdown()
                try? await control.channel.close()
                try? await metricsServer?.close()
                await node.stop()
            }
        }
        LocalSystem.removeFile(configuration.controlSocket)
    }
}

/// Why the daemon stopped on its own.
public enum DaemonError: Error, CustomStringConvertible {
    case socketLost(String)

    public var description: String {
        switch self {
        case .socketLost(let reason): "the TED socket was lost: \(reason)"
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// The control socket's line protocol: `status`, `status text`, `discover <packet>`.
enum ControlProtocol {
    static func answer(_ request: String, node: TEDNode, identity: Identity, plugins: [any DaemonPlugin]) async -> String {
        let line = request.trimmingWhitespace()
        if line == "status" || line == "status text" {
            let (initiator, responder, socket) = await node.snapshot()
            var tunnels: [TunnelRecord] = []
            for plugin in plugins { tunnels += await plugin.tunnels() }
            var charon: CharonStatus?
            for plugin in plugins where charon == nil { charon = await plugin.charon() }
            var report = StatusReport(identity: identity, initiator: initiator, responder: responder, socket: socket,
                                      tunnels: tunnels, held: plugins.lazy.compactMap { $0.held() }.first, now: .now())
            report.charon = charon
            report.dataplane = plugins.lazy.compactMap(\.dataplaneMode).first ?? .none
            return line == "status" ? report.json.rendered + "\n" : report.lines.joined(separator: "\n") + "\n"
        }
        if line == "metrics" { return node.metrics.prometheusText() }
        if line.hasPrefix("discover ") {
            do {
                let packet = try Packet(parsing: String(line.dropFirst("discover ".count)))
                return await node.discover(packet).json.rendered + "\n"
            } catch {
                return JSON.object([("error", .string("packet: column \(error.column): \(error.message)"))]).rendered + "\n"
            }
        }
        return JSON.object([("error", .string("unknown request; expected 'status', 'status text', 'metrics' or 'discover <packet>'"))]).rendered + "\n"
    }
}

extension String {
    /// Without leading and trailing white space and line breaks.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

extension DaemonService: CustomStringConvertible {
    public var description: String { "DaemonService(\(configuration.tedIdentity))" }
}
