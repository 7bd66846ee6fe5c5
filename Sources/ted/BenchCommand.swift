import ArgumentParser

/// `ted bench`: what an operator measures on their own policy. The benchmarks of ted itself
/// (the responder under load, the codec, the baseline index) are `ted-bench`, in Benchmarks/.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the policy classifier on a configuration's policy or a ClassBench set (build with -c release for real figures).",
        subcommands: [ClassifyBench.self])
}
