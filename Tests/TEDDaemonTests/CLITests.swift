import Foundation
import Testing
import TEDTestSupport

/// The command line as other tools and scripts use it: the real `ted` binary, real processes.
@Suite(.serialized) struct CLITests {
    static let ted = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("ted").path

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    @discardableResult
    static func run(_ arguments: [String], timeout: Double = 20) throws -> Run {
        let run = runCommand(ted, arguments, timeout: timeout)
        return Run(status: run.status, stdout: run.stdout, stderr: run.stderr)
    }

    static func temporaryFile(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ted-cli-\(getpid())-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func intersectPrintsTheDocumentedJSON() throws {
        let result = try Self.run(["intersect", "--initiator", "ip 198.18.1.0/24 198.18.0.0/16",
                                   "--responder", "tcp 198.18.2.0/24 eq 443 198.18.0.0/16",
                                   "--packet", "tcp 198.18.1.10:40000 198.18.2.20:443", "--json"])
        #expect(result.status == 0)
        #expect(result.stdout == #"{"empty":false,"protocol":6,"initiator_side":{"address":"198.18.1.0","mask":"255.255.255.0","ports":[0,65535]},"responder_side":{"address":"198.18.2.0","mask":"255.255.255.0","ports":[443,443]},"packet_inside":true,"child":{"local_ts":"198.18.1.0/24[tcp]","remote_ts":"198.18.2.0/24[tcp/443]"}}"# + "\n")
        let empty = try Self.run(["intersect", "--initiator", "udp 198.18.1.0/24 198.18.2.0/24",
                                  "--responder", "tcp 198.18.2.0/24 198.18.1.0/24",
                                  "--packet", "udp 198.18.1.10:1 198.18.2.20:2", "--json"])
        #expect(empty.status == 0 && empty.stdout == #"{"empty":true,"packet_inside":false}"# + "\n")
    }

    @Test func usageAndSyntaxErrorsExitTwo() throws {
        let bad = try Self.run(["intersect", "--initiator", "tcp any any eq nope", "--responder", "ip any any"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("column 16: invalid port 'nope'"))
        #expect(try Self.run(["intersect"]).status == 2)
        #expect(try Self.run(["probe", "--config", "x.yaml", "--packet", "tcp 1.2.3"]).status == 2)
    }

    @Test func checkReportsFileLineColumn() throws {
        let good = try Self.temporaryFile("good.yaml", "identity: 198.51.100.1\npolicy:\n  - permit ip 198.18.1.0/24 any\n")
        let ok = try Self.run(["check", good])
        #expect(ok.status == 0 && ok.stdout.contains("1 entries (1 permit, 0 deny)"))
        let badPath = try Self.temporaryFile("bad.yaml", "identity: 198.51.100.1\npolicy:\n  - permit ip 198.18.1.0/24 any\n  - permit tcp any any eq nope\n")
        let bad = try Self.run(["check", badPath])
        #expect(bad.status == 2)
        #expect(bad.stderr == "\(badPath):4:27: error: invalid port 'nope' (0-65535 or a name such as 'https')\n")
    }

    @Test func checkNamesTheOffendingLineOfAFoldedListItem() throws {
        let path = try Self.temporaryFile("folded.yaml", "identity: 198.51.100.1\npolicy:\n  - permit ip any any\n   - permit tcp any any\n")
        let result = try Self.run(["check", path])
        #expect(result.status == 2)
        #expect(result.stderr == "\(path):4:4: error: unexpected '-' at end of entry (YAML joined lines 3 to 4 into one policy line: check the indentation of line 4)\n")
    }

    @Test func daemonRefusesACaptureFileThatIsNotPcap() throws {
        let notPcap = try Self.temporaryFile("not-a.pcap", "identity: 198.51.100.1\n")
        let config = try Self.temporaryFile("daemon-capture.yaml", """
            identity: 127.0.0.1
            listen: 127.0.0.1:0
            policy: [permit ip 198.18.1.0/24 any]
            control-socket: /tmp/ted-cli-\(getpid())-capture.sock
            capture: \(notPcap)
            """)
        let result = try Self.run(["daemon", "--config", config], timeout: 10)
        #expect(result.status != 0)
        #expect(result.stderr.contains("refusing to append to \(notPcap): it is not a pcap file"))
        #expect(try String(contentsOfFile: notPcap, encoding: .utf8) == "identity: 198.51.100.1\n")
    }

    @Test func checkShowsTheCaptureAndItsBound() throws {
        let path = try Self.temporaryFile("capture.yaml", """
            identity: 198.51.100.1
            policy: [permit ip any any]
            capture: /var/tmp/ted.pcap
            capture-max-bytes: 1M
            """)
        let result = try Self.run(["check", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("capture:        /var/tmp/ted.pcap, then /var/tmp/ted.pcap.1 at 1048576 bytes\n"))
    }

    @Test func checkWarnsAboutOverlappingPeersAndNamesWhoDecides() throws {
        let path = try Self.temporaryFile("overlap.yaml", """
            identity: 198.51.100.1
            policy: [permit ip any any]
            peers: [198.51.100.0/24, { identity: 198.51.100.2, protects: [198.18.2.0/24] }, 203.0.113.0/24]
            """)
        let result = try Self.run(["check", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("warning:        peers 198.51.100.0/24 and 198.51.100.2/32 overlap: where both hold an address only "
            + "198.51.100.2/32 decides (its claims, its key, its IKE children)\n"))
        #expect(!result.stdout.contains("203.0.113.0/24 overlap"))
    }

    @Test func checkShowsWhetherFirstPacketsAreHeld() throws {
        let held = try Self.temporaryFile("hold.yaml", """
            identity: 198.51.100.1
            policy: [permit ip any any]
            dataplane: { traps: true }
            hold: { per-flow: 2, time: 1s }
            """)
        let on = try Self.run(["check", held])
        #expect(on.stdout.contains("hold:           first packets held (queue 2029): 2 per flow, 256 packets and 1048576 bytes in all, at most 1.0 s\n"))
        let dropped = try Self.temporaryFile("nohold.yaml", "identity: 198.51.100.1\npolicy: [permit ip any any]\ndataplane: { traps: true }\nhold: off\n")
        #expect(try Self.run(["check", dropped]).stdout.contains("hold:           off: first packets are dropped until their tunnel is up\n"))
    }

    @Test func classifyNamesTheEntry() throws {
        let path = try Self.temporaryFile("classify.yaml", """
            identity: 198.51.100.1
            policy:
              - deny tcp 198.18.1.0/24 any eq 22
              - permit ip 198.18.1.0/24 198.18.0.0/16
            """)
        let result = try Self.run(["classify", "--config", path, "--packet", "tcp 198.18.1.10:40000 198.18.2.20:22", "--json"])
        #expect(result.stdout == #"{"match":true,"role":"initiator","index":1,"line":3,"entry":"deny tcp 198.18.1.0/24 any eq 22","action":"deny"}"# + "\n")
        let responder = try Self.run(["classify", "--config", path, "--as", "responder", "--packet", "tcp 198.18.2.20:1 198.18.1.10:2", "--json"])
        #expect(responder.stdout.contains(#""index":2"#))
    }

    /// A real daemon: `ted probe` discovers through it, `ted status` and /metrics report it,
    /// SIGTERM stops it cleanly.
    @Test func daemonProbeStatusMetricsAndShutdown() throws {
        let port = 20000 + Int(getpid() % 20000), metricsPort = port + 1
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("ted-cli-\(getpid()).sock").path
        let daemonConfig = try Self.temporaryFile("daemon.yaml", """
            identity: 127.0.0.2
            listen: 127.0.0.2:\(port)
            advertise-port: \(port)
            policy:
              - permit tcp 198.18.2.0/24 eq 443 198.18.0.0/16
            control-socket: \(socket)
            metrics: 127.0.0.1:\(metricsPort)
            """)
        let probeConfig = try Self.temporaryFile("probe.yaml", """
            identity: 127.0.0.1
            policy:
              - permit ip 198.18.1.0/24 198.18.0.0/16
            discovery: { retries: 1, timeout: 200ms }
            """)
        let daemon = try OwnedProcess(Self.ted, ["daemon", "--config", daemonConfig, "--log-level", "warning"])
        defer { daemon.terminate() }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }

        let found = try Self.run(["probe", "--config", probeConfig, "--packet", "tcp 198.18.1.10:40000 198.18.2.20:443",
                                  "--to", "127.0.0.2:\(port)", "--json"])
        #expect(found.status == 0)
        #expect(found.stdout.hasPrefix(#"{"discovered":true,"peer":{"address":"127.0.0.2","port":\#(port)}"#))
        #expect(found.stdout.contains(#""intersection":{"empty":false,"protocol":6,"initiator_side":{"address":"198.18.1.0""#))
        let missed = try Self.run(["probe", "--config", probeConfig, "--packet", "udp 198.18.1.10:4000 198.18.2.20:53",
                                   "--to", "127.0.0.2:\(port)", "--timeout", "0.3", "--json"])
        #expect(missed.status == 1)
        #expect(missed.stdout.contains(#""discovered":false,"reason":"timeout""#))

        let status = try Self.run(["status", "--socket", socket, "--json"])
        #expect(status.status == 0)
        #expect(status.stdout.contains(#""responder":{"received":3,"replies":1"#))

        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        #expect(metrics.contains("HTTP/1.1 200 OK"))
        #expect(metrics.contains("ted_responder_replies_total 1"))
        #expect(metrics.contains(#"ted_responder_drops_total{reason="no_match"} 2"#))

        daemon.terminate()
        #expect(daemon.exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// `ted probe` against a responder that is not ted: a plain socket that answers with the
    /// spec's response vector 2, only the initiator cookie copied from the probe.
    @Test func probeWorksAgainstAResponderThatIsNotTed() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0003).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let responder = TestThread {
            var probe = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &probe, probe.count, 0)
            guard n >= 64 else { return }
            // Vector 2, cookie from the probe, sent to the probe's identity (ID body at 56: port 58-59, address 60-63).
            var reply = hexBytes(SpecVectors.responseV4) ?? []
            reply.replaceSubrange(0..<8, with: probe[0..<8])
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = (UInt16(probe[58]) << 8 | UInt16(probe[59])).bigEndian
            to.sin_addr.s_addr = (UInt32(probe[60]) << 24 | UInt32(probe[61]) << 16 | UInt32(probe[62]) << 8 | UInt32(probe[63])).bigEndian
            _ = withUnsafePointer(to: &to) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        let config = try Self.temporaryFile("plain.yaml", "identity: 127.0.0.1\npolicy:\n  - permit ip 198.18.1.0/24 198.18.0.0/16\n")
        let result = try Self.run(["probe", "--config", config, "--packet", "tcp 198.18.1.10:40000 198.18.2.20:443",
                                   "--to", "127.0.0.3:\(port)", "--json"])
        responder.join()
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix(#"{"discovered":true,"peer":{"address":"198.51.100.2","port":500}"#))
        #expect(result.stdout.contains(#""intersection":{"empty":false,"protocol":6,"initiator_side":{"address":"198.18.1.0","mask":"255.255.255.0","ports":[0,65535]},"responder_side":{"address":"198.18.2.0","mask":"255.255.255.0","ports":[443,443]}}"#))
    }

    @Test func demoRunsAndShowsWhereV2Fails() throws {
        let result = try Self.run(["demo"], timeout: 30)
        #expect(result.status == 0)
        #expect(result.stdout.contains("TED v3        tunnel tcp 198.18.1.0/24 <-> 198.18.2.0/24 port 443"))
        #expect(result.stdout.contains("TED v2        would FAIL"))
        #expect(result.stdout.contains("(from the cache, no probe)"))
        #expect(result.stdout.contains("TED v3        tunnel udp 2001:db8:1::/48 <-> 2001:db8:2::/48 port 53"))
    }

    @Test func demoShowsThePlainCaseWhereV2WorksTooAndEndsWithE2E() throws {
        let result = try Self.run(["demo"], timeout: 30)
        #expect(result.status == 0)
        let rows = result.stdout.components(separatedBy: "\n\n")
        let plain = rows.first { $0.hasPrefix("packet        tcp 198.18.1.10:40000 198.18.4.40:80   (on the path: gwE)") }
        #expect(plain?.contains("TED v3        tunnel ip 198.18.1.0/24 <-> 198.18.4.0/24") == true)
        #expect(plain?.contains("TED v2        would work: ip 198.18.1.0/24 <-> 198.18.4.0/24") == true)
        #expect(result.stdout.components(separatedBy: "TED v2        would work").count == 2)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.suffix(2).first == "TED v3 gave a tunnel to 6 of 8 packets (no responder protects the others), TED v2 to 1.")
        #expect(lines.last == "Real tunnels (strongSwan, XFRM, network namespaces; root): scripts/e2e.sh")
    }

    @Test func demoJSONIsOneObjectPerPacket() throws {
        let result = try Self.run(["demo", "--json"], timeout: 30)
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 8)
        #expect(lines.allSatisfy { $0.hasPrefix(#"{"packet":"#) })
        #expect(lines.first?.contains(#""path":"gwE""#) == true)
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1 over a blocking socket.
func httpGet(port: Int, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return "" }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var reply: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { break }
        reply += chunk[0..<n]
    }
    return String(decoding: reply, as: UTF8.self)
}

/// A joinable thread for a blocking test peer.
final class TestThread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<TestThread>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
    }

    func join() { pthread_join(handle, nil) }
}
