import Foundation
import Logging
import Testing
import TEDTestSupport
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
@testable import TEDVici
#endif

/// The VICI client and controller against a real charon (strongSwan 5.9) running in a
/// network namespace of its own, reached through its UNIX socket: every command ted uses,
/// the events stream, and charon going away and coming back. Needs root and charon;
/// skipped without them, failed in CI.
@Suite(.serialized, .enabled(if: RootTests.runnable, "needs root and charon")) struct ViciLiveCharonTests {
    static let charonPath = "/usr/lib/ipsec/charon"

    final class Charon: @unchecked Sendable {
        let namespace = "\(TestRuns.tag("tedvici", leftovers: { [Charon.directory(of: $0)] }))-\(UInt16.random(in: 0...UInt16.max))"
        let directory: String
        var process: OwnedProcess?
        var socket: String { "\(directory)/charon.vici" }

        /// The work directory of the charon in `namespace`.
        static func directory(of namespace: String) -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("ted-vici-\(namespace)").path
        }

        init() throws {
            directory = Self.directory(of: namespace)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try """
                charon {
                  load_modular = yes
                  plugins {
                    include /etc/strongswan.d/charon/*.conf
                    vici {
                      socket = unix://\(socket)
                    }
                    stroke {
                      load = no
                    }
                    kernel-libipsec {
                      load = yes
                    }
                  }
                }
                """.write(toFile: "\(directory)/strongswan.conf", atomically: true, encoding: .utf8)
            Self.shell(["ip", "netns", "add", namespace])
            Self.shell(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"])
        }

        @discardableResult
        static func shell(_ arguments: [String]) -> Int32 {
            runCommand("/usr/bin/env", arguments).status
        }

        func start() throws {
            unlink(socket)
            // One pid from ip to charon (each execs the next), so the death signal reaches charon.
            process = try OwnedProcess("/usr/bin/env", ["ip", "netns", "exec", namespace, "unshare", "-m", "sh", "-c",
                                                        "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=\(directory)/strongswan.conf exec \(ViciLiveCharonTests.charonPath)"])
            for _ in 0..<200 where access(socket, F_OK) != 0 { usleep(25_000) }
            guard access(socket, F_OK) == 0 else { throw HarnessFailure("charon did not open \(socket)") }
        }

        func kill() {
            process?.kill()
            process = nil
        }

        deinit {
            kill()
            Self.shell(["ip", "netns", "del", namespace])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    struct HarnessFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func available() -> Bool {
        if geteuid() == 0, access(charonPath, X_OK) == 0 { return true }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("the live charon test needs root and \(charonPath), and CI must run it")
        } else {
            print("skipped: the live charon test needs root and \(charonPath)")
        }
        return false
    }

    static let holdVariable = "TED_TEST_HOLD_CHARON"

    /// Issue 33: a test process killed by SIGKILL takes its charon along at once (the death
    /// signal), and the next run removes the namespace it left (the reaper). The run to kill
    /// is this test binary again, running `holdACharonUntilKilled` only.
    @Test func aKilledRunLeavesNoCharonAndTheNextRunRemovesItsNamespace() throws {
        guard Self.available() else { return }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ted-hold-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let report = "\(work)/held"
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let run = try OwnedProcess("/usr/bin/env", ["\(Self.holdVariable)=\(report)", binary, "--testing-library", "swift-testing",
                                                    "--filter", "holdACharonUntilKilled"], output: "\(work)/run.log")
        defer { run.kill() }
        var held: [Substring] = []
        for _ in 0..<1200 where held.count != 2 && run.isRunning {
            usleep(50_000)
            held = ((try? String(contentsOfFile: report, encoding: .utf8)) ?? "").split(separator: " ")
        }
        let log = (try? String(contentsOfFile: "\(work)/run.log", encoding: .utf8)) ?? ""
        try #require(held.count == 2, "the killed run never reported its charon: \(log.suffix(2000))")
        let namespace = String(held[0])
        let charon = try #require(pid_t(held[1]))
        #expect(TestRuns.startTime(of: charon) != nil, "charon runs while its test does")

        run.kill()
        for _ in 0..<100 where TestRuns.startTime(of: charon) != nil { usleep(50_000) }
        #expect(TestRuns.startTime(of: charon) == nil, "charon \(charon) outlived the test process that started it")
        if TestRuns.startTime(of: charon) != nil { kill(charon, SIGKILL) }

        #expect(Self.namespaces().contains(namespace), "the reaper, not the death signal, removes the namespace")
        let reaped = TestRuns.reapDeadRuns(prefix: "tedvici", leftovers: { [Charon.directory(of: $0)] })
        #expect(reaped.contains(namespace))
        #expect(!Self.namespaces().contains(namespace))
        #expect(!FileManager.default.fileExists(atPath: Charon.directory(of: namespace)))
        // This run's own namespaces are alive and stay.
        #expect(reaped.allSatisfy { TestRuns.runPID($0, prefix: "tedvici") != getpid() })
    }

    /// The run `aKilledRunLeavesNoCharonAndTheNextRunRemovesItsNamespace` kills: starts a
    /// charon, reports its namespace and pid, and waits (60 s at most) to be killed.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[holdVariable] != nil, "only as the run that test kills"))
    func holdACharonUntilKilled() throws {
        let report = try #require(ProcessInfo.processInfo.environment[Self.holdVariable])
        let charon = try Charon()
        try charon.start()
        let pid = try #require(charon.process?.pid)
        try "\(charon.namespace) \(pid)".write(toFile: report, atomically: true, encoding: .utf8)
        sleep(60)
    }

    static func namespaces() -> [String] {
        runCommand("/usr/bin/env", ["ip", "netns", "list"]).stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
    }

    @Test func everyCommandTedUsesAgainstARealCharon() async throws {
        guard Self.available() else { return }
        let charon = try Charon()
        try charon.start()
        let controller = ViciController(socketPath: charon.socket, logger: quietLogger)
        try await controller.loadSharedKey(SharedKey(id: "ted-psk-1", secret: "a live test key of enough bytes", owners: ["198.51.100.2"]))
        #expect(try await controller.sharedKeyIDs().contains("ted-psk-1"))
        let events = try await controller.events()
        let connection = IKEConnection(name: "ted-live-test", localAddress: "198.51.100.1", remoteAddress: "198.51.100.2",
                                       proposals: ["aes128-sha256-modp2048"], espProposals: ["aes128-sha256"],
                                       localID: "198.51.100.1", remoteID: "198.51.100.2",
                                       children: [IKEChild(name: "ted-live-test", localTS: ["198.18.1.0/24[udp/mdns]"],
                                                           remoteTS: ["198.18.2.0/24[tcp/443]"])])
        try await controller.loadConnection(connection, authentication: .psk)
        #expect(try await controller.connectionNames().contains("ted-live-test"))
        #expect(try await controller.childSAs().isEmpty)
        // initiate returns at once (timeout -1), though the peer does not exist; waiting for
        // the outcome would take charon's IKE retransmissions (with its defaults, over two
        // minutes). The bound is loose so a loaded machine does not fail it.
        let started = ContinuousClock.now
        try await controller.initiate(child: "ted-live-test", ike: "ted-live-test")
        #expect(ContinuousClock.now - started < .seconds(10))
        try await controller.terminate(ike: "ted-live-test")
        try await controller.unloadConnection("ted-live-test")
        #expect(try await !controller.connectionNames().contains("ted-live-test"))
        // charon refuses to unload what is not there, with its own message.
        await #expect(throws: (any Error).self) { try await controller.unloadConnection("ted-never-loaded") }
        try await controller.unloadSharedKey(id: "ted-psk-1")
        #expect(try await !controller.sharedKeyIDs().contains("ted-psk-1"))

        // charon goes away: the events end, commands fail; it comes back: commands work again.
        charon.kill()
        let ended = Task { for await _ in events {}; return true }
        let result = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await ended.value }
            group.addTask { try? await Task.sleep(for: .seconds(5)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(result, "the events stream must end when charon goes away")
        await #expect(throws: (any Error).self) { try await controller.connectionNames() }
        try charon.start()
        #expect(try await controller.connectionNames().isEmpty)
        await controller.close()
    }
}
