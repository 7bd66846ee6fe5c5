import ArgumentParser
import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The `ted` command line: TED v3 tunnel endpoint discovery for IPsec.
@main
struct TED: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ted",
        abstract: "Tunnel Endpoint Discovery v3 for IPsec: find the gateway that protects a packet's destination.",
        version: Version.line,
        subcommands: [
            IntersectCommand.self,
            CheckCommand.self,
            ClassifyCommand.self,
            DecodeCommand.self,
            DaemonCommand.self,
            CleanupCommand.self,
            ProbeCommand.self,
            StatusCommand.self,
            DemoCommand.self,
            BenchCommand.self,
        ]
    )

    /// Runs a command; usage errors exit with status 2 (not ArgumentParser's 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                printError(fullMessage(for: error))
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
