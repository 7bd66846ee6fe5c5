import ArgumentParser
import Foundation
import Glibc
import TEDBenchSupport
import TEDConfig
import TEDDaemon
import TEDLinux

#if canImport(Glibc)
import TEDModel
#endif

/// `ted bench classify`: the compiled classifier on a configuration's policy or a ClassBench set, beside the scan.
struct ClassifyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Build time, memory and lookups/s of the compiled classifier on a configuration's policy or a ClassBench acl1 set, beside the linear scan.",
        discussion: """
            With --config, the configuration's policy; otherwise the ClassBench rules become the \
            responder's policy (ClassBench destination = local side). Every lookup is the \
            responder's. The trace: 90% a random point inside a random entry, 10% uniformly \
            random headers, from a fixed seed. The compiled classifier answers every packet both \
            by entry number and through firstMatch, which must agree; the scan, too slow for large \
            sets, is timed and compared on the first --scan-sample packets only. (The hash index \
            that preceded the compiled classifier is measured by `ted-bench index`, in Benchmarks/.) \
            One thread, one lookup at a time. compiled_lookups_per_second is the classification \
            proper (the matching entry's number, as rte_acl returns a rule's userdata); the text \
            output adds the rate through PolicyLookup.firstMatch, which also copies the PolicyRule out of the policy, as the \
            scan does. All rates are wall-clock; the text adds rates per CPU second.
            """)

    @Option(help: "Configuration file whose policy is measured (instead of a ClassBench set).")
    var config: String?

    @Option(help: "ClassBench acl1 file (plain or .gz); default Benchmarks/classbench/acl1_2k.txt.")
    var classbench: String?

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
        guard config == nil || classbench == nil else { throw ValidationError("--config and --classbench exclude each other") }
    }

    func run() throws {
        let source: String, policy: Policy, traced: [Packet]
        if let config {
            policy = try loadConfiguration(config).policy
            guard !policy.rules.isEmpty else { throw BenchError("no policy entry in \(config)") }
            source = "configuration \(config)"
            traced = LookupTrace.packets(policy: policy, count: trace, seed: seed)
        } else {
            let path = classbench ?? "Benchmarks/classbench/acl1_2k.txt"
            let rules: [ClassBenchRule]
            (rules, policy) = try classBenchPolicy(path)
            source = "ClassBench \(path)"
            traced = LookupTrace.packets(rules: rules, count: trace, seed: seed)
        }

        let residentBefore = trimmedResidentBytes()
        let start = monotonicNanos()
        let compiled = CompiledPolicy(policy)
        let buildSeconds = seconds(since: start)
        let residentBytes = trimmedResidentBytes() - residentBefore

        var packets = traced
        if withoutPorts {
            packets = packets.compactMap { Packet(proto: $0.proto, source: $0.source, destination: $0.destination) }
        }
        let sample = packets.prefix(scanSample)
        let compiledRun = LookupRates(packets) { compiled.firstMatchPosition($0, as: .responder) ?? -1 }
        let compiledRuleRun = LookupRates(packets, firstMatchOf: compiled)
        let scanRun = LookupRates(sample, firstMatchOf: policy)
        let compiledAnswers = compiledRun.answers
        let ruleDisagreements = zip(compiledAnswers, compiledRuleRun.answers).filter { $0 != $1 }.count
        let scanDisagreements = zip(compiledAnswers, scanRun.answers).filter { $0 != $1 }.count
        let agree = ruleDisagreements == 0 && scanDisagreements == 0

        if json {
            print(JSON.object([
                ("rules", .int(policy.rules.count)), ("build_seconds", .double(buildSeconds)),
                ("resident_bytes", .int(residentBytes)), ("compiled_lookups_per_second", .double(compiledRun.perSecond)),
                ("scan_lookups_per_second", .double(scanRun.perSecond)), ("agree", .bool(agree)),
            ]).rendered)
        } else {
            let statistics = compiled.statistics
            let matched = compiledAnswers.filter { $0 >= 0 }.count
            print("\(source): \(policy.rules.count) rules, responder lookups, one thread")
            print("trace: \(packets.count) packets (seed \(seed))\(withoutPorts ? " without ports" : ""), \(matched) match an entry")
            print("compiled build: \(format3(buildSeconds)) s, \(statistics.trees) trees, \(statistics.nodes) nodes, "
                  + "depth \(statistics.depth), \(statistics.leaves) leaves holding \(statistics.leafEntries) entries "
                  + "(largest \(statistics.largestLeaf))")
            print("compiled memory: \(residentBytes) bytes resident growth while building, "
                  + "\(statistics.footprintBytes) bytes in its arrays")
            print("")
            print("| lookup | packets | lookups/s (wall clock) | lookups per CPU second |")
            print("|---|---:|---:|---:|")
            for (name, run, count) in [("compiled classifier: entry number", compiledRun, packets.count),
                                       ("compiled classifier: firstMatch (copies the PolicyRule)", compiledRuleRun, packets.count),
                                       ("linear scan (baseline, first \(sample.count) packets only)", scanRun, sample.count)] {
                print("| \(name) | \(count) | \(Int(run.perSecond)) | \(Int(run.perCPUSecond)) |")
            }
            print("")
            print("agreement: entry number vs firstMatch on all \(packets.count) packets: \(ruleDisagreements) differ; "
                  + "compiled vs scan on the first \(sample.count): \(scanDisagreements) differ")
        }
        if !agree { throw ExitCode(1) }
    }
}

/// Resident bytes of this process after returning freed heap to the system.
func trimmedResidentBytes() -> Int {
    releaseFreedHeap()
    return residentKiB(getpid()) * 1024
}
