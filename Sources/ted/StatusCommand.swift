import ArgumentParser
import TEDDaemon

/// `ted status`: ask a running daemon over its control socket.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running daemon's counters, discoveries in flight, cache and tunnels.")

    @Option(help: "The daemon's control socket.")
    var socket = "/run/ted/ted.sock"

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        do {
            let reply = try await ControlClient.request(json ? "status" : "status text", socketPath: socket)
            print(reply, terminator: "")
        } catch {
            printError("ted status: cannot reach the daemon at \(socket): \(error)")
            throw ExitCode(1)
        }
    }
}
