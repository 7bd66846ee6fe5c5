import ArgumentParser
import TEDConfig
import TEDLinux
import TEDDaemon

/// `ted status`: ask a running daemon over its control socket.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running daemon's counters, discoveries in flight, cache and tunnels.")

    @Option(help: "The daemon's control socket (default: the configuration's control-socket).")
    var socket: String?

    @Option(help: "The daemon's configuration, read for its control-socket when --socket is not given (default: \(defaultConfigPath)).")
    var config: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let socket = try self.socket ?? Self.socket(config: config)
        do {
            let reply = try await ControlClient.request(json ? "status" : "status text", socketPath: socket)
            print(reply, terminator: "")
        } catch {
            printError("ted status: cannot reach the daemon at \(socket): \(error)")
            throw ExitCode(1)
        }
    }

    /// The configuration's `control-socket`. Without `--config`, a missing default file means
    /// the default socket; a file that is there but wrong, or a named one that cannot be
    /// read, is an error (exit 2, as `ted check` reports it).
    static func socket(config: String?) throws -> String {
        if config == nil && !LocalSystem.fileExists(defaultConfigPath) { return Configuration.defaultControlSocket }
        return try loadConfiguration(config ?? defaultConfigPath).controlSocket
    }
}
