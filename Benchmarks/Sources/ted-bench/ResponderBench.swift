import ArgumentParser
import Foundation
import TEDBenchSupport
import TEDModel
import TEDWire

/// The responder under load on loopback, beside a minimal NIO UDP echo server.
struct ResponderBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "responder",
        abstract: "Probes/s, p50/p99 latency at half that rate, and resident memory of `ted daemon` with a large policy.")

    @Option(help: "The ted binary whose daemon is measured.")
    var ted = ".build/release/ted"

    @Option(help: "Seconds per measurement.")
    var seconds = 5.0

    @Option(help: "Policy entries (taken from the ClassBench file when found, else synthetic).")
    var entries = 1000

    @Option(help: "ClassBench acl1 file.")
    var classbench = "Benchmarks/classbench/acl1_2k.txt"

    @Option(help: "Unanswered probes allowed in flight during the throughput run.")
    var window = 256

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ted-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var rng = SystemRandomNumberGenerator()
        let rules = (try? readClassBench(classbench)).map { ClassBenchRule.parse($0, limit: entries) } ?? []
        let lines = rules.isEmpty ? syntheticPolicy(entries) : rules.map(\.responderLine)
        let source = rules.isEmpty ? "synthetic" : "ClassBench \(classbench)"
        let tedPort = try freeUDPPort(), echoPort = try freeUDPPort()
        let configPath = directory.appendingPathComponent("responder.yaml").path
        try Self.responderYAML(lines: lines, port: tedPort, socket: directory.appendingPathComponent("ted.sock").path)
            .write(toFile: configPath, atomically: true, encoding: .utf8)

        let generator = try UDPLoadGenerator()
        let probes = try probeDatagrams(rules: rules, count: 1000, identityPort: generator.port, rng: &rng)
        let echo = try spawnSelf(["echo", "--port", "\(echoPort)"])
        let daemon = try spawn(ted, ["daemon", "--config", configPath, "--log-level", "error"])
        defer { for process in [echo, daemon] { process.terminate(); process.waitUntilExit() } }
        try waitUntilAnswering(generator, port: echoPort, probe: probes[0])
        try waitUntilAnswering(generator, port: tedPort, probe: probes[0])
        let rssIdle = residentKiB(daemon.processIdentifier)

        print("responder benchmark: \(lines.count) policy entries (\(source)), \(probes.count) distinct probes, \(seconds) s per run, window \(window)")
        let echoMax = generator.run(datagrams: probes, to: echoPort, seconds: seconds, window: window)
        let tedMax = generator.run(datagrams: probes, to: tedPort, seconds: seconds, window: window)
        let half = tedMax.receivedPerSecond / 2
        let echoLatency = generator.run(datagrams: probes, to: echoPort, seconds: seconds, rate: half)
        let tedLatency = generator.run(datagrams: probes, to: tedPort, seconds: seconds, rate: half)
        let rss = residentKiB(daemon.processIdentifier), peak = peakKiB(daemon.processIdentifier)

        func row(_ name: String, _ peak: UDPLoadGenerator.Result, _ latency: UDPLoadGenerator.Result) -> String {
            "| \(name) | \(Int(peak.receivedPerSecond)) | \(Int(latency.receivedPerSecond)) | "
                + "\(threeDecimals(latency.percentile(0.5) / 1000)) | \(threeDecimals(latency.percentile(0.99) / 1000)) | "
                + "\(threeDecimals(Double(latency.sent - latency.received) / Double(max(latency.sent, 1)) * 100)) % |"
        }
        print("")
        print("| server | max answers/s | rate for latency (answers/s) | p50 ms | p99 ms | lost at that rate |")
        print("|---|---:|---:|---:|---:|---:|")
        print(row("UDP echo (NIO, baseline)", echoMax, echoLatency))
        print(row("ted responder", tedMax, tedLatency))
        print("")
        print("ted / echo throughput ratio: \(threeDecimals(tedMax.receivedPerSecond / echoMax.receivedPerSecond))")
        print("ted daemon resident memory: \(rssIdle / 1024) MiB idle, \(rss / 1024) MiB after the runs, peak \(peak / 1024) MiB")
    }

    /// A responder on 127.0.0.1:`port` with `lines` as its policy and rate limits out of the way:
    /// each at its largest valid value (1,000,000, five times the most this machine answers),
    /// which older builds accept too, so `responder.sh` can run one beside the tree.
    static func responderYAML(lines: [String], port: UInt16, socket: String) -> String {
        var yaml = """
            identity: 127.0.0.1
            listen: 127.0.0.1:\(port)
            responder:
              rate: 1000000
              burst: 1000000
              target-rate: 1000000
              target-burst: 1000000
              global-rate: 1000000
              global-burst: 1000000
            control-socket: \(socket)
            policy:

            """
        for line in lines { yaml += "  - \(line)\n" }
        return yaml
    }

    private func threeDecimals(_ value: Double) -> String { String(format: "%.3f", value) }

    private func syntheticPolicy(_ count: Int) -> [String] {
        (0..<count).map { "permit tcp 198.\(18 + $0 / 65536 % 2).\($0 / 256 % 256).\($0 % 256) 198.18.0.0/15 eq \(1000 + $0 % 1000)" }
    }

    private func probeDatagrams(rules: [ClassBenchRule], count: Int, identityPort: UInt16,
                                rng: inout SystemRandomNumberGenerator) throws -> [[UInt8]] {
        let identity = Identity(address: IPAddress(v4: 0x7f00_0001), port: identityPort)
        var datagrams: [[UInt8]] = []
        for index in 0..<count {
            let packet: Packet?
            if rules.isEmpty {
                packet = Packet(proto: .tcp, source: IPAddress(v4: 0xC612_0000 | UInt32.random(in: 0...0xffff, using: &rng)),
                                destination: IPAddress(v4: 0xC612_0000 | UInt32(index % 256) | UInt32(index / 256 % 256) << 8),
                                sourcePort: 40000, destinationPort: UInt16(1000 + index % 1000))
            } else {
                packet = rules[index % rules.count].packet(using: &rng)
            }
            guard let packet else { continue }
            let probe = Probe(initiatorCookie: 1, identity: identity, summary: packet)
            datagrams.append(Array(TEDCodec.encode(.probe(probe)).readableBytesView))
        }
        guard !datagrams.isEmpty else { throw BenchError("no probes could be built") }
        return datagrams
    }

    private func waitUntilAnswering(_ generator: UDPLoadGenerator, port: UInt16, probe: [UInt8]) throws {
        for _ in 0..<50 {
            if generator.run(datagrams: [probe], to: port, seconds: 0.05, window: 1).received > 0 { return }
        }
        throw BenchError("nothing answers on 127.0.0.1:\(port)")
    }
}
