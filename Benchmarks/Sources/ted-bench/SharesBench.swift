import ArgumentParser
import Foundation
import TEDBenchSupport
import TEDModel

/// `ted-bench shares`: what the responder's own shares cost on a ClassBench set, through
/// the classifier's trees beside the scan.
struct SharesBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shares",
        abstract: "Time to compute every permit's own share (the entry without the earlier entries it overlaps) on a ClassBench acl1 set, through the compiled trees beside the linear scan.",
        discussion: """
            What ted-responder's child configs cost to build at each connection to charon, and \
            what one uncached probe costs the responder at most. The scan runs on the first \
            --scan-sample entries only (it is quadratic); both must give the same shares there.
            """)

    @Option(help: "ClassBench acl1 file (plain or .gz).")
    var classbench = "Benchmarks/classbench/acl1_2k.txt"

    @Option(help: "Entries the linear scan computes shares for (timed and compared).")
    var scanSample = 2_000

    func run() throws {
        let policy = try classBenchPolicy(classbench).policy
        var start = monotonicNanos()
        let compiled = CompiledPolicy(policy)
        let buildSeconds = seconds(since: start)
        start = monotonicNanos()
        let shares = policy.rules.indices.map { compiled.share(ofPosition: $0, in: policy, family: .v4) }
        let treeSeconds = seconds(since: start)
        let sample = min(scanSample, policy.rules.count)
        start = monotonicNanos()
        let scanned = (0..<sample).map { policy.share(ofPosition: $0, family: .v4) }
        let scanSeconds = seconds(since: start)
        let differ = zip(scanned, shares).count { $0 != $1 }
        var cut = 0, fragmented = 0, pieces = 0
        for share in shares {
            switch share {
            case .whole: pieces += 1
            case .pieces(let own): cut += 1; pieces += own.count
            case .fragmented: fragmented += 1
            }
        }
        print("ClassBench \(classbench): \(policy.rules.count) entries (classifier built in \(String(format: "%.3f", buildSeconds)) s)")
        print("shares through the trees: \(String(format: "%.3f", treeSeconds)) s for all, \(Int(Double(shares.count) / treeSeconds)) entries/s")
        print("shares by the scan: \(String(format: "%.3f", scanSeconds)) s for the first \(sample), \(Int(Double(sample) / scanSeconds)) entries/s; \(differ) differ")
        print("\(cut) entries cut by earlier ones, \(fragmented) fragmented (over \(EntryShare.maxPieces) pieces), \(pieces) child configs")
    }
}
