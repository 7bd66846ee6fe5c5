import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The control socket's server on a real UNIX socket: idle clients never keep out a
/// command, and a command being answered is not closed for a newcomer.
@Suite(.timeLimit(.minutes(1))) struct LineServerTests {
    /// A line server on a UNIX socket of its own, on a loop of its own (connections admitted
    /// in the order they arrive), with credentials checked as ted does (the test runs as
    /// ted's own user) and a long lifetime, stopped after `body`.
    ///
    /// Bound here, not with `LineServer.bind`: its umask change is process-wide, and a `ted`
    /// another test spawned meanwhile would inherit it.
    static func withServer(cap: Int, name: String, handler: @escaping LineServer.Handler,
                           _ body: (_ path: String, _ guard: ConnectionGuard) async throws -> Void) async throws {
        let path = "/tmp/ted-line-test-\(getpid())-\(name).sock"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connectionGuard = ConnectionGuard(maxConnections: cap, lifetime: .seconds(60), checkCredentials: true)
        var failure: (any Error)?
        do {
            let server = try await ServerBootstrap(group: group)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) {
                    LineServer.accept($0, guard: connectionGuard)
                }
            let serving = Task { try await LineServer(connectionGuard: connectionGuard, handler: handler).serve(server) }
            do {
                try await body(path, connectionGuard)
            } catch {
                failure = error
            }
            serving.cancel()
            try? await server.channel.close()
            _ = await serving.result
        } catch {
            failure = error
        }
        try await group.shutdownGracefully()
        unlink(path)
        if let failure { throw failure }
    }

    @Test func aCommandIsAnsweredWhileIdleConnectionsHoldEverySlot() async throws {
        try await Self.withServer(cap: 8, name: "idle", handler: { _ in "pong\n" }) { path, connectionGuard in
            var idle: [LocalClient] = []
            for _ in 0..<16 { idle.append(try LocalClient.unix(path: path)) }
            let command = try LocalClient.unix(path: path)
            try command.send("ping\n")
            let reply = await command.read(within: .seconds(2))
            #expect(reply.text == "pong\n")
            #expect(reply.closed)
            // 8 idle newcomers and the command each closed the oldest; the newest stay.
            #expect(await eventually { idle.prefix(9).allClosed })
            #expect(idle.suffix(7).allOpenAndQuiet)
            #expect(connectionGuard.evicted == 9)
            #expect(connectionGuard.refused == 0)
        }
    }

    @Test func aCommandBeingAnsweredIsNotClosedToMakeRoom() async throws {
        let entered = NIOLockedValueBox(false)
        let released = NIOLockedValueBox(false)
        let handler: LineServer.Handler = { request in
            entered.withLockedValue { $0 = true }
            _ = await eventually(within: .seconds(5)) { released.withLockedValue { $0 } }
            return "done \(request)"
        }
        try await Self.withServer(cap: 3, name: "busy", handler: handler) { path, connectionGuard in
            let slow = try LocalClient.unix(path: path)
            try slow.send("status\n")
            #expect(await eventually { entered.withLockedValue { $0 } })
            let older = try LocalClient.unix(path: path)
            let newer = try LocalClient.unix(path: path)
            #expect(await eventually { connectionGuard.current == 3 })
            let newcomer = try LocalClient.unix(path: path)
            #expect(await eventually { older.isClosed })
            #expect(slow.isOpenAndQuiet && newer.isOpenAndQuiet && newcomer.isOpenAndQuiet)
            released.withLockedValue { $0 = true }
            #expect(await slow.read(within: .seconds(2)).text == "done status\n")
        }
    }
}
