import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TEDConfig
import TEDEngine
import TEDModel
import TEDWire

/// Something the daemon runs beside discovery: the data plane, the IKE hand-off.
///
/// `start` is called once the TED socket is bound, `stop` on shutdown in reverse order.
public protocol DaemonPlugin: Sendable {
    func start(node: TEDNode) async throws
    func stop() async
    /// Tunnels to list in `ted status`.
    func tunnels() async -> [TunnelRecord]
}

extension DaemonPlugin {
    public func tunnels() async -> [TunnelRecord] { [] }
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
        let node = try await TEDNode.start(configuration: configuration, logger: logger, events: events,
                                           probeSender: probeSender)
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
        let control = try await LineServer.bind(group: MultiThreadedEventLoopGroup.singleton,
                                                unixPath: configuration.controlSocket)
        let metricsServer = try await configuration.metrics.asyncMap {
            try await LineServer.bind(group: MultiThreadedEventLoopGroup.singleton,
                                      host: "\($0.address)", port: Int($0.port))
        }
        let plugins = self.plugins
        let identity = configuration.tedIdentity
        let controlServer = LineServer(untilBlankLine: false) { request in
            await ControlProtocol.answer(request, node: node, identity: identity, plugins: plugins)
        }
        let httpServer = LineServer(untilBlankLine: true) { request in
            MetricsEndpoint.answer(request, registry: node.metrics)
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try? await controlServer.serve(control) }
            if let metricsServer { group.addTask { try? await httpServer.serve(metricsServer) } }
            group.addTask {
                try? await gracefulShutdown()
                try? await control.channel.close()
                try? await metricsServer?.channel.close()
            }
        }
        unlinkSocket(configuration.controlSocket)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

#if canImport(Glibc)
import Glibc
#endif

func unlinkSocket(_ path: String) { _ = unlink(path) }

/// The control socket's line protocol: `status`, `status text`, `discover <packet>`.
enum ControlProtocol {
    static func answer(_ request: String, node: TEDNode, identity: Identity, plugins: [any DaemonPlugin]) async -> String {
        let line = request.trimmingWhitespace()
        if line == "status" || line == "status text" {
            let (initiator, responder) = await node.snapshot()
            var tunnels: [TunnelRecord] = []
            for plugin in plugins { tunnels += await plugin.tunnels() }
            let report = StatusReport(identity: identity, initiator: initiator, responder: responder,
                                      tunnels: tunnels, now: .now())
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

/// The Prometheus scrape endpoint: `GET /metrics`.
enum MetricsEndpoint {
    static func answer(_ request: String, registry: MetricsRegistry) -> String {
        let firstLine = request.prefix { $0 != "\r" && $0 != "\n" }
        let parts = firstLine.split(separator: " ")
        guard parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" else {
            return response(status: "404 Not Found", body: "only GET /metrics is served\n")
        }
        return response(status: "200 OK", body: registry.prometheusText())
    }

    private static func response(status: String, body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
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
