import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TEDTestSupport
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
    static func withServer(cap: Int, name: String, mode: mode_t = 0o600, groupID: gid_t? = nil,
                           handler: @escaping LineServer.Handler,
                           _ body: (_ path: String, _ guard: ConnectionGuard) async throws -> Void) async throws {
        let path = "/tmp/ted-line-test-\(getpid())-\(name).sock"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connectionGuard = ConnectionGuard(maxConnections: cap, lifetime: .seconds(60), checkCredentials: true)
        var failure: (any Error)?
        do {
            let server = try await LineServer.bind(group: group, unixPath: path, mode: mode, groupID: groupID, guard: connectionGuard)
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

    /// The socket appears at its path with its mode and group, over a stale file, and
    /// nothing of its private staging directory is left; the process's umask is untouched.
    @Test(arguments: [(mode_t(0o600), nil), (mode_t(0o660), gid_t(4))] as [(mode_t, gid_t?)])
    func theSocketAppearsWithItsModeAndGroup(mode: mode_t, groupID: gid_t?) async throws {
        let name = "mode-\(String(mode, radix: 8))"
        let path = "/tmp/ted-line-test-\(getpid())-\(name).sock"
        // A socket a killed ted left.
        let stale = runCommand("/usr/bin/python3", ["-c", "import socket; socket.socket(socket.AF_UNIX).bind('\(path)')"])
        #expect(stale.status == 0)
        let mask = umask(0o022)
        defer { umask(mask) }
        try await Self.withServer(cap: 1, name: name, mode: mode, groupID: groupID, handler: { _ in "ok\n" }) { path, _ in
            var info = stat()
            #expect(lstat(path, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o777 == mode)
            #expect(info.st_gid == groupID ?? getegid())
            let left = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix(".ted-line-test-\(getpid())-\(name)") }
            #expect(left.isEmpty, "no staging directory is left")
            let client = try LocalClient.unix(path: path)
            try client.send("x\n")
            #expect(await client.read(within: .seconds(2)).text == "ok\n")
            #expect(umask(0o022) == 0o022, "bind left the umask alone")
        }
    }

    /// A path that holds another kind of file (a mistyped `control-socket`) is never replaced.
    @Test func anotherKindOfFileIsNotReplaced() async throws {
        let path = "/tmp/ted-line-test-\(getpid())-file.sock"
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        await #expect {
            _ = try await LineServer.bind(group: MultiThreadedEventLoopGroup.singleton, unixPath: path, mode: 0o600, groupID: nil,
                                          guard: ConnectionGuard(maxConnections: 1, lifetime: .seconds(1), checkCredentials: true))
        } throws: { "\($0)".contains("which is not a socket") }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
        let left = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix(".ted-line-test-\(getpid())-file") }
        #expect(left.isEmpty, "no staging directory is left")
    }
}
