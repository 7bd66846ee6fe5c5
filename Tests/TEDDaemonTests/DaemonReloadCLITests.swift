import Foundation
import Testing
import TEDTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `systemctl reload ted` (SIGHUP): the daemon re-reads its file; a changed policy takes
/// effect in the same process, a file `ted check` refuses is refused with one line and the
/// running policy stays, and SIGTERM still stops it cleanly.
@Suite(.serialized) struct DaemonReloadCLITests {
    /// A UDP port free on 127.0.0.1 a moment ago.
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return UInt16(bigEndian: address.sin_port)
    }

    static func responder(port: UInt16, socket: String, entry: String) -> String {
        """
        identity: 127.0.0.1
        listen: 127.0.0.1:\(port)
        control-socket: \(socket)
        policy: [\(entry)]
        """
    }

    /// The responder side of the entry the daemon answers with now ("" when unanswered).
    static func answeredMask(port: UInt16, initiator: String) throws -> String {
        let run = try CLITests.run(["probe", "--config", initiator, "--packet", "tcp 198.18.1.10:40000 198.18.2.20:443",
                                    "--to", "127.0.0.1:\(port)", "--timeout", "1", "--json"], timeout: 10)
        guard let data = run.stdout.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = object["entries"] as? [[String: Any]], let side = entries.first?["responder_side"] as? [String: Any]
        else { return "" }
        return side["mask"] as? String ?? ""
    }

    @Test(.timeLimit(.minutes(2))) func aReloadAppliesAGoodFileAndRefusesABadOne() throws {
        let port = try Self.freePort()
        let directory = "/tmp/ted-reload-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ted.yaml", log = "\(directory)/ted.log", socketPath = "\(directory)/ted.sock"
        let initiator = "\(directory)/initiator.yaml"
        try "identity: 127.0.0.1\npolicy: [permit ip 198.18.1.0/24 198.18.0.0/15]\n".write(toFile: initiator, atomically: true, encoding: .utf8)
        try Self.responder(port: port, socket: socketPath, entry: "permit ip 198.18.2.0/24 198.18.1.0/24")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let daemon = try OwnedProcess(CLITests.ted, ["daemon", "--config", path], output: log)
        defer { _ = daemon.terminate() }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
        #expect(try Self.answeredMask(port: port, initiator: initiator) == "255.255.255.0")

        // A changed policy takes effect, in the same process.
        try Self.responder(port: port, socket: socketPath, entry: "permit ip 198.18.2.0/25 198.18.1.0/24")
            .write(toFile: path, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        var mask = ""
        for _ in 0..<40 where mask != "255.255.255.128" {
            usleep(250_000)
            mask = try Self.answeredMask(port: port, initiator: initiator)
        }
        #expect(mask == "255.255.255.128" && daemon.isRunning)

        // A file `ted check` refuses is refused, with its line and column; the running policy stays.
        try "identity: 127.0.0.1\nlisten: 127.0.0.1:\(port)\npolicy: [permit tcp 198.18.2.0/33 any]\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        var logged = ""
        for _ in 0..<40 where !logged.contains("reload refused") {
            usleep(100_000)
            logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        let refusal = logged.split(separator: "\n").filter { $0.contains("reload refused") }
        #expect(refusal.count == 1 && refusal.first?.contains("ted.yaml:3:") == true, "\(refusal)")
        #expect(daemon.isRunning)
        #expect(try Self.answeredMask(port: port, initiator: initiator) == "255.255.255.128")

        daemon.signal(SIGTERM)
        #expect(daemon.wait(timeout: 10) != nil && daemon.exitCode == 0)
    }
}
