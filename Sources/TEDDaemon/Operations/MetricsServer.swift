import NIOCore
import NIOHTTP1
import NIOPosix

/// The Prometheus scrape endpoint, `GET /metrics`, on NIO's HTTP/1 server pipeline.
///
/// Bounded like every local surface (`ConnectionGuard`): a few connections at once, each
/// closed a few seconds after it was accepted, so idle clients cannot exhaust descriptors;
/// at the cap the oldest idle connection is closed, so idle clients cannot keep out a scrape.
enum MetricsServer {
    static let maxConnections = 16
    static let lifetime = TimeAmount.seconds(5)

    /// Binds `host`:`port` and serves until the returned channel is closed.
    static func bind(group: any EventLoopGroup, host: String, port: Int, registry: MetricsRegistry,
                     guard connectionGuard: ConnectionGuard) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connectionGuard.admit(channel).flatMapThrowing {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry, guard: connectionGuard))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Answers each request with the registry's text (or 404/405) and keeps HTTP/1.1 semantics.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: MetricsRegistry
    private let connectionGuard: ConnectionGuard
    private var head: HTTPRequestHead?

    init(registry: MetricsRegistry, guard connectionGuard: ConnectionGuard) {
        self.registry = registry
        self.connectionGuard = connectionGuard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request): head = request
        case .body: break
        case .end:
            guard let request = head else { return }
            head = nil
            connectionGuard.setBusy(context.channel, true)
            respond(context: context, request: request)
        }
    }

    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead) {
        let (status, body): (HTTPResponseStatus, String) = switch (request.method, request.uri.split(separator: "?").first) {
        case (.GET, "/metrics"?), (.HEAD, "/metrics"?): (.ok, registry.prometheusText())
        case (_, "/metrics"?): (.methodNotAllowed, "only GET /metrics is served\n")
        default: (.notFound, "only GET /metrics is served\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; version=0.0.4")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let channel = context.channel
        let connectionGuard = self.connectionGuard
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if keepAlive { connectionGuard.setBusy(channel, false) } else { channel.close(promise: nil) }
        }
    }
}
