import ArgumentParser
import Foundation
import TEDConfig
import TEDDaemon
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// `ted bench classify`: the compiled classifier on a ClassBench set, beside the scan and the index.
struct ClassifyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Build time, memory and lookups/s of the compiled classifier on a ClassBench acl1 set, beside the linear scan.",
        discussion: """
            The rules become the responder's policy (ClassBench destination = local side) and every \
            lookup is the responder's. The trace: 90% a random point inside a random rule, 10% \
            uniformly random headers, from a fixed seed. The compiled classifier and IndexedPolicy \
            answer every packet and must agree on each; the scan, too slow for large sets, is timed \
            and compared on the first --scan-sample packets only. One thread, one lookup at a time. \
            compiled_lookups_per_second is the classification proper (the matching entry's number, as \
            rte_acl returns a rule's userdata); the text output adds the rate through \
            PolicyLookup.firstMatch, which also copies the PolicyRule out of the policy, as the \
            baselines do. All rates are wall-clock; the text adds rates per CPU second.
            """)

    @Option(help: "ClassBench acl1 file (plain or .gz).")
    var classbench = "Benchmarks/classbench/acl1_2k.txt"

    @Option(help: "Packets in the trace.")
    var trace = 1_000_000

    @Option(help: "Packets of the trace the linear scan classifies (timed and compared).")
    var scanSample = 10_000

    @Option(help: "Seed of the trace.")
    var seed: UInt64 = 1

    @Flag(help: "Drop the ports of every packet of the trace (a summary without ports matches every port range: the lookup's slow path).")
    var withoutPorts = false

    @Flag(help: "Print one JSON object: rules, build_seconds, resident_bytes, compiled_lookups_per_second, scan_lookups_per_second, agree.")
    var json = false

    func validate() throws {
        guard trace > 0 else { throw ValidationError("--trace must be at least 1") }
        guard scanSample > 0 else { throw ValidationError("--scan-sample must be at least 1") }
    }

    func run() throws {
        let (rules, policy) = try classBenchPolicy(classbench)

        let residentBefore = trimmedResidentBytes()
        var start = monotonicNanos()
        let compiled = CompiledPolicy(policy)
        let buildSeconds = seconds(since: start)
        let residentBytes = trimmedResidentBytes() - residentBefore
        start = monotonicNanos()
        let indexed = IndexedPolicy(policy)
        let indexBuildSeconds = seconds(since: start)

        var packets = ClassBenchTrace.packets(rules: rules, count: trace, seed: seed)
        if withoutPorts {
            packets = packets.compactMap { Packet(proto: $0.proto, source: $0.source, destination: $0.destination) }
        }
        let sample = packets.prefix(scanSample)
        let compiledRun = Self.classify(packets) { compiled.firstMatchPosition($0, as: .responder) ?? -1 }
        let compiledRuleRun = Self.classify(packets, with: compiled)
        let indexedRun = Self.classify(packets, with: indexed)
        let scanRun = Self.classify(sample, with: policy)
        let compiledAnswers = compiledRun.answers
        let indexDisagreements = zip(compiledAnswers, indexedRun.answers).filter { $0 != $1 }.count
            + zip(compiledAnswers, compiledRuleRun.answers).filter { $0 != $1 }.count
        let scanDisagreements = zip(compiledAnswers, scanRun.answers).filter { $0 != $1 }.count
        let agree = indexDisagreements == 0 && scanDisagreements == 0

        if json {
            print(JSON.object([
                ("rules", .int(rules.count)), ("build_seconds", .double(buildSeconds)),
                ("resident_bytes", .int(residentBytes)), ("compiled_lookups_per_second", .double(compiledRun.perSecond)),
                ("scan_lookups_per_second", .double(scanRun.perSecond)), ("agree", .bool(agree)),
            ]).rendered)
        } else {
            let statistics = compiled.statistics
            let matched = compiledAnswers.filter { $0 >= 0 }.count
            print("ClassBench \(classbench): \(rules.count) rules, responder lookups, one thread")
            print("trace: \(packets.count) packets (seed \(seed))\(withoutPorts ? " without ports" : ""), \(matched) match an entry")
            print("compiled build: \(format3(buildSeconds)) s, \(statistics.trees) trees, \(statistics.nodes) nodes, "
                  + "depth \(statistics.depth), \(statistics.leaves) leaves holding \(statistics.leafEntries) entries "
                  + "(largest \(statistics.largestLeaf))")
            print("compiled memory: \(residentBytes) bytes resident growth while building, "
                  + "\(statistics.footprintBytes) bytes in its arrays")
            print("IndexedPolicy build: \(format3(indexBuildSeconds)) s")
            print("")
            print("| lookup | packets | lookups/s (wall clock) | lookups per CPU second |")
            print("|---|---:|---:|---:|")
            for (name, run, count) in [("compiled classifier: entry number", compiledRun, packets.count),
                                       ("compiled classifier: firstMatch (copies the PolicyRule)", compiledRuleRun, packets.count),
                                       ("IndexedPolicy (baseline)", indexedRun, packets.count),
                                       ("linear scan (baseline, first \(sample.count) packets only)", scanRun, sample.count)] {
                print("| \(name) | \(count) | \(Int(run.perSecond)) | \(Int(run.perCPUSecond)) |")
            }
            print("")
            print("agreement: compiled vs IndexedPolicy on all \(packets.count) packets: \(indexDisagreements) differ; "
                  + "compiled vs scan on the first \(sample.count): \(scanDisagreements) differ")
        }
        if !agree { throw ExitCode(1) }
    }

    /// The 0-based position each packet matches (-1: none), lookups per second of wall-clock
    /// time, and per second of this thread's CPU time (what one core does when the machine is shared).
    private static func classify(_ packets: some Collection<Packet>, _ lookup: (Packet) -> Int) -> Rates {
        var answers: [Int] = []
        answers.reserveCapacity(packets.count)
        let start = monotonicNanos(), startCPU = threadCPUNanos()
        for packet in packets {
            answers.append(lookup(packet))
        }
        let wall = max(seconds(since: start), 1e-9), cpu = max(Double(threadCPUNanos() - startCPU) / 1e9, 1e-9)
        return Rates(answers: answers, perSecond: Double(packets.count) / wall, perCPUSecond: Double(packets.count) / cpu)
    }

    /// Through `PolicyLookup.firstMatch`, which also copies the matching `PolicyRule` out of the policy.
    private static func classify(_ packets: some Collection<Packet>, with lookup: some PolicyLookup) -> Rates {
        classify(packets) { lookup.firstMatch($0, as: .responder).map { $0.index - 1 } ?? -1 }
    }

    private struct Rates {
        let answers: [Int]
        let perSecond: Double
        let perCPUSecond: Double
    }
}

/// A reproducible header trace for a ClassBench set.
enum ClassBenchTrace {
    /// 90% a random point inside a random rule, 10% uniformly random: a random protocol
    /// (TCP, UDP, ICMP or any number 1-255 with even odds) with random addresses and ports.
    static func packets(rules: [ClassBenchRule], count: Int, seed: UInt64) -> [Packet] {
        var rng = SplitMix64(seed: seed)
        var packets: [Packet] = []
        packets.reserveCapacity(count)
        while packets.count < count {
            if rng.next() % 10 == 0 {
                let proto = [IPProtocol.tcp, .udp, .icmp, IPProtocol(UInt8.random(in: 1...255, using: &rng))][Int(rng.next() % 4)]
                let ports = proto.allowsPortSelectors
                if let packet = Packet(proto: proto, source: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                       destination: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                       sourcePort: ports ? UInt16(truncatingIfNeeded: rng.next()) : nil,
                                       destinationPort: ports ? UInt16(truncatingIfNeeded: rng.next()) : nil) {
                    packets.append(packet)
                }
            } else if let packet = rules[Int(rng.next() % UInt64(rules.count))].packet(using: &rng) {
                packets.append(packet)
            }
        }
        return packets
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small seeded generator for reproducible traces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A ClassBench file's text; `.gz` files go through `gzip -dc`.
/// A ClassBench acl1 file as the responder's policy (ClassBench destination = local side).
func classBenchPolicy(_ path: String) throws -> (rules: [ClassBenchRule], policy: Policy) {
    let rules = ClassBenchRule.parse(try readClassBench(path))
    guard !rules.isEmpty else { throw BenchError("no ClassBench rule in \(path)") }
    do {
        return (rules, try Policy(lines: rules.map(\.responderLine)))
    } catch {
        throw BenchError("rule \(error.lineIndex + 1): \(error.error.message)")
    }
}

func readClassBench(_ path: String) throws -> String {
    guard path.hasSuffix(".gz") else {
        guard let text = readTextFile(path) else { throw BenchError("cannot read \(path)") }
        return text
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-dc", "--", path]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw BenchError("gzip -dc \(path) failed") }
    return String(decoding: data, as: UTF8.self)
}

/// Resident bytes of this process after returning freed heap to the system.
func trimmedResidentBytes() -> Int {
    releaseFreedHeap()
    return residentKiB(getpid()) * 1024
}

/// CPU time this thread has used, in nanoseconds.
private func threadCPUNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func seconds(since start: UInt64) -> Double {
    Double(monotonicNanos() - start) / 1e9
}
