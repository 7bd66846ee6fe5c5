import ArgumentParser
import Foundation
import TEDBenchSupport
import TEDModel
import TEDWire

/// `ted-bench probes`: the inputs of `Benchmarks/responder.sh`, a responder configuration
/// with a ClassBench policy and probe datagrams for it, encoded by the codec.
struct ProbesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probes",
        abstract: "Write a responder configuration with a ClassBench policy and probes it answers (for Benchmarks/responder.sh).",
        discussion: """
            The configuration listens on 127.0.0.1:--listen-port with rate limits out of the way \
            (as `ted-bench responder`). Probe i is a random point (fixed seed) inside rule \
            i * rules / count, so the probes spread over the whole policy; its identity is \
            127.0.0.1:--identity-port, where the load generator listens. The probes file holds \
            each datagram as a 2-byte big-endian length then its bytes.
            """)

    @Option(help: "ClassBench acl1 file (plain or .gz).")
    var classbench = "Benchmarks/classbench/acl1_2k.txt"

    @Option(help: "The first this many rules of the set (default: all).")
    var entries: Int?

    @Option(help: "Probes to write.")
    var count = 1000

    @Option(help: "Port the responder listens on (127.0.0.1).")
    var listenPort: UInt16

    @Option(help: "Port in the probes' identity payload: where the load generator receives answers.")
    var identityPort: UInt16

    @Option(help: "The daemon's control socket path.")
    var controlSocket: String

    @Option(help: "Configuration file to write.")
    var config: String

    @Option(help: "Probes file to write.")
    var probes: String

    @Option(help: "Seed of the probes' random points.")
    var seed: UInt64 = 1

    func validate() throws {
        guard count > 0, count <= 65536 else { throw ValidationError("--count must be 1-65536") }
        if let entries, entries < 1 { throw ValidationError("--entries must be at least 1") }
    }

    func run() throws {
        let rules = ClassBenchRule.parse(try readClassBench(classbench), limit: entries ?? .max)
        guard !rules.isEmpty else { throw BenchError("no ClassBench rule in \(classbench)") }
        try ResponderBench.responderYAML(lines: rules.map(\.responderLine), port: listenPort, socket: controlSocket)
            .write(toFile: config, atomically: true, encoding: .utf8)
        var rng = SplitMix64(seed: seed)
        let identity = Identity(address: IPAddress(v4: 0x7f00_0001), port: identityPort)
        var bytes: [UInt8] = []
        var written = 0
        for index in 0..<count {
            guard let packet = rules[index * rules.count / count].packet(using: &rng) else { continue }
            let datagram = TEDCodec.encode(.probe(Probe(initiatorCookie: UInt64(index + 1), identity: identity, summary: packet)))
            bytes.append(UInt8(datagram.readableBytes >> 8))
            bytes.append(UInt8(datagram.readableBytes & 0xff))
            bytes.append(contentsOf: datagram.readableBytesView)
            written += 1
        }
        guard written > 0 else { throw BenchError("no probe could be built") }
        try Data(bytes).write(to: URL(fileURLWithPath: probes))
        print("\(rules.count) policy entries from \(classbench), \(written) probes")
    }
}
