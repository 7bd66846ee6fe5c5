import Foundation
import Testing
import TEDTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `--config` on every command that reads a configuration: `ted check` takes it beside its
/// positional path, and `ted status` finds the control socket in it when `--socket` is not given.
@Suite(.serialized) struct ConfigOptionCLITests {
    @Test func checkTakesConfigAsWellAsThePath() throws {
        let good = try CLITests.temporaryFile("option-good.yaml", "identity: 127.0.0.1\npolicy: [permit ip any any]\n")
        let bad = try CLITests.temporaryFile("option-bad.yaml", "identity: 127.0.0.1\npolicy: [permit ip any any]\nlog-level: loud\n")
        defer { unlink(good); unlink(bad) }
        let positional = try CLITests.run(["check", good])
        let option = try CLITests.run(["check", "--config", good])
        #expect(positional.status == 0 && option.status == 0 && option.stdout == positional.stdout && !option.stdout.isEmpty)
        #expect(try CLITests.run(["check", good, "--config", good]).status == 0)
        let refused = try CLITests.run(["check", "--config", bad])
        #expect(refused.status == 2 && refused.stderr.contains("\(bad):3:12: error: 'log-level' must be one of"))
        // Two different files is a usage error (exit 2, as every usage error of ted).
        let two = try CLITests.run(["check", good, "--config", bad])
        #expect(two.status == 2 && two.stderr.contains("two configuration files given"))
    }

    @Test(.timeLimit(.minutes(1))) func statusFindsTheSocketInTheConfiguration() throws {
        let directory = "/tmp/ted-option-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ted.yaml", socketPath = "\(directory)/control.sock"
        try "identity: 127.0.0.1\nlisten: 127.0.0.1:0\ncontrol-socket: \(socketPath)\npolicy: [permit ip any any]\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let daemon = try OwnedProcess(CLITests.ted, ["daemon", "--config", path], output: "\(directory)/ted.log")
        defer { _ = daemon.terminate() }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
        let status = try CLITests.run(["status", "--config", path])
        #expect(status.status == 0 && status.stdout.hasPrefix("ted 127.0.0.1:500\n"), "\(status.stderr)")
        // --socket still wins.
        let elsewhere = try CLITests.run(["status", "--config", path, "--socket", "\(directory)/none.sock"])
        #expect(elsewhere.status == 1 && elsewhere.stderr.contains("\(directory)/none.sock"))
        // A named file that cannot be read is a configuration error.
        let missing = try CLITests.run(["status", "--config", "\(directory)/missing.yaml"])
        #expect(missing.status == 2 && missing.stderr.contains("missing.yaml:1:1: error: cannot read the file"))
    }
}
