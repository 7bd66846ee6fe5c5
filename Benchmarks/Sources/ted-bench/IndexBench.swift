import ArgumentParser
import BaselineIndex
import Foundation
import TEDBenchSupport
import TEDModel

/// `ted-bench index`: the compiled classifier beside the hash index it replaced, on a ClassBench set.
struct IndexBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Build time and lookups/s of IndexedPolicy (the baseline index) beside the compiled classifier on a ClassBench acl1 set; both must agree on every packet.",
        discussion: "The trace is `ted bench classify`'s (same seed, same packets); responder lookups, one thread.")

    @Option(help: "ClassBench acl1 file (plain or .gz).")
    var classbench = "Benchmarks/classbench/acl1_2k.txt"

    @Option(help: "Packets in the trace.")
    var trace = 1_000_000

    @Option(help: "Seed of the trace.")
    var seed: UInt64 = 1

    func validate() throws {
        guard trace > 0 else { throw ValidationError("--trace must be at least 1") }
    }

    func run() throws {
        let (rules, policy) = try classBenchPolicy(classbench)
        var start = monotonicNanos()
        let compiled = CompiledPolicy(policy)
        let compiledBuild = seconds(since: start)
        start = monotonicNanos()
        let indexed = IndexedPolicy(policy)
        let indexedBuild = seconds(since: start)
        let packets = LookupTrace.packets(rules: rules, count: trace, seed: seed)
        let compiledRun = LookupRates(packets, firstMatchOf: compiled)
        let indexedRun = LookupRates(packets, firstMatchOf: indexed)
        let differ = zip(compiledRun.answers, indexedRun.answers).count { $0 != $1 }
        print("ClassBench \(classbench): \(rules.count) rules, \(packets.count) packets (seed \(seed)), responder lookups, one thread")
        print("")
        print("| lookup (firstMatch) | build s | lookups/s (wall clock) | lookups per CPU second |")
        print("|---|---:|---:|---:|")
        print("| compiled classifier | \(String(format: "%.3f", compiledBuild)) | \(Int(compiledRun.perSecond)) | \(Int(compiledRun.perCPUSecond)) |")
        print("| IndexedPolicy (baseline) | \(String(format: "%.3f", indexedBuild)) | \(Int(indexedRun.perSecond)) | \(Int(indexedRun.perCPUSecond)) |")
        print("")
        print("agreement: \(differ) of \(packets.count) packets differ")
        if differ != 0 { throw ExitCode(1) }
    }
}
