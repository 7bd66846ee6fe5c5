import ArgumentParser
import Logging
import TEDConfig
import TEDDaemon

/// `ted cleanup`: remove everything ted installs (for an operator who uninstalls it).
struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Remove every XFRM policy, nftables table, ip rule and charon connection ted installed.",
        discussion: """
            A stopped ted leaves its XFRM traps and inbound guard in place on purpose: protected
            traffic stays blocked, never in clear, until ted is back. Run this only to uninstall
            ted: afterwards such traffic follows the routing table again.
            """)

    @Option(help: "The daemon's configuration (for its probe port and charon's VICI socket).")
    var config: String?

    func run() async throws {
        var configuration: Configuration?
        if let config {
            do {
                configuration = try ConfigurationLoader.load(path: config)
            } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
        }
        for line in await Cleanup.run(configuration: configuration, logger: Logger(label: "ted")) { print(line) }
    }
}
