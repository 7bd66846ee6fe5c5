import NIOCore
import NIOPosix
import TEDLinux

/// A tiny request/response server on the control socket: each connection sends one
/// request line (at most `maxRequest` bytes), gets one reply, and is closed.
///
/// Every local client is treated as hostile: `ConnectionGuard` admits only allowed peers,
/// a bounded number at once, each for a bounded time; at the cap the oldest connection
/// still sending its request is closed, so idle clients cannot keep out a command.
struct LineServer: Sendable {
    typealias Handler = @Sendable (String) async -> String

    let maxRequest = 8192
    /// The guard `bind` was given, told which connections are being answered.
    let connectionGuard: ConnectionGuard
    let handler: Handler

    /// Binds a UNIX socket and returns the channel of accepted connections; serve it with
    /// `serve(_:)`. The socket appears at `unixPath` with `mode` (and `group`, when set),
    /// replacing a stale one, and is reachable by nobody else before (`PrivateSocketPath`).
    static func bind(group: any EventLoopGroup, unixPath: String, mode: mode_t, groupID: gid_t?,
                     guard connectionGuard: ConnectionGuard) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        let bootstrap = ServerBootstrap(group: group).serverChannelOption(.backlog, value: 64)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
            accept(channel, guard: connectionGuard)
        }
        let place = try PrivateSocketPath(for: unixPath)
        defer { place.discard() }
        let server = try await bootstrap.bind(unixDomainSocketPath: place.bindPath, childChannelInitializer: initializer)
        do {
            try place.publish(mode: mode, groupID: groupID)
        } catch {
            try? await server.channel.close()
            throw ControlSocketError("\(error)")
        }
        return server
    }

    /// Admits an accepted connection through `connectionGuard` and wraps it for `serve(_:)`.
    static func accept(_ channel: any Channel,
                       guard connectionGuard: ConnectionGuard) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> {
        connectionGuard.admit(channel).flatMapThrowing {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
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
            connectionGuard.setBusy(connection.channel, true)
            let reply = await handler(text)
            try await outbound.write(ByteBuffer(string: reply))
        }
    }

    private func isComplete(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.contains(UInt8(ascii: "\n"))
    }
}

/// A control socket set-up failure.
public struct ControlSocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif

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
