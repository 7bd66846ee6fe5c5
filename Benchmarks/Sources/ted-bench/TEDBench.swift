import ArgumentParser

/// `ted-bench`: speed and memory figures, each beside a baseline measured in the same run.
/// (`ted bench classify`, which an operator runs on their own policy, stays in `ted`.)
@main
struct TEDBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ted-bench",
        abstract: "Measure ted against baselines in the same run (build with -c release for real figures).",
        subcommands: [ResponderBench.self, WireBench.self, IndexBench.self, SharesBench.self, ProbesBench.self, EchoServerCommand.self])

    /// As `ted`'s: parses on the main thread, so the synchronous benchmarks run and the process
    /// exits there. (ArgumentParser's own async main parses asynchronously; an exit from
    /// another thread crashes valgrind, which scripts/bench-wire-allocations.sh runs.)
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
