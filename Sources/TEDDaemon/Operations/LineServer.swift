import NIOCore
import NIOPosix

/// A tiny request/response server: each connection sends one request (up to a blank line
/// or a newline, at most `maxRequest` bytes), gets one reply, and is closed.
///
/// Serves the control socket (UNIX) and the Prometheus endpoint (TCP).
struct LineServer: Sendable {
    typealias Handler = @Sendable (String) async -> String

    let maxRequest = 8192
    /// Whether a request ends at an empty line (HTTP) rather than at the first newline.
    let untilBlankLine: Bool
    let handler: Handler

    /// Binds and returns the channel of accepted connections; serve it with `serve(_:)`.
    static func bind(
        group: any EventLoopGroup, unixPath: String? = nil, host: String? = nil, port: Int = 0
    ) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        let bootstrap = ServerBootstrap(group: group).serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        if let unixPath {
            return try await bootstrap.bind(unixDomainSocketPath: unixPath, cleanupExistingSocketFile: true,
                                            childChannelInitializer: initializer)
        }
        return try await bootstrap.bind(host: host ?? "127.0.0.1", port: port, childChannelInitializer: initializer)
    }

    /// Accepts connections until the server channel closes or the task is cancelled.
    func serve(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { await self.answer(connection) }
                }
            }
        }
    }

    private func answer(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var request = ByteBuffer()
            for try await var chunk in inbound {
                request.writeBuffer(&chunk)
                if isComplete(request) { break }
                if request.readableBytes > maxRequest { return }
            }
            let text = String(buffer: request)
            let reply = await handler(text)
            try await outbound.write(ByteBuffer(string: reply))
        }
    }

    private func isComplete(_ buffer: ByteBuffer) -> Bool {
        let view = buffer.readableBytesView
        if untilBlankLine {
            return view.count >= 4 && view.suffix(4).elementsEqual("\r\n\r\n".utf8)
                || view.count >= 2 && view.suffix(2).elementsEqual("\n\n".utf8)
        }
        return view.contains(UInt8(ascii: "\n"))
    }
}

/// Sends one request line to a UNIX socket and returns the whole reply.
public enum ControlClient {
    public static func request(_ line: String, socketPath: String) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: socketPath) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: line + "\n"))
            var reply = ByteBuffer()
            for try await var chunk in inbound {
                reply.writeBuffer(&chunk)
                if reply.readableBytes > 16 << 20 { break }
            }
            return String(buffer: reply)
        }
    }
}
