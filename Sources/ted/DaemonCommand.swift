import ArgumentParser
import Logging
import ServiceLifecycle
import UnixSignals
import TEDConfig
import TEDDaemon
import TEDLinux

/// `ted daemon`: run discovery (and, when configured, the data plane and IKE hand-off).
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the TED initiator and responder until SIGTERM or SIGINT; SIGHUP reloads the configuration.")

    @Option(help: "The configuration file (YAML).")
    var config = defaultConfigPath

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: the configuration's log-level, else info).")
    var logLevel: Logger.Level?

    func run() async throws {
        keepLargeAllocationsMapped()
        // Trapped before anything runs, for the process's life: SIGHUP reloads, never kills.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let configuration = try loadConfiguration(config)
        let logger = DaemonSupervisor.logger(makeLogger(label: "ted", level: .info), for: configuration, override: logLevel)
        let service: DaemonService
        do {
            service = try DaemonAssembly.service(configuration: configuration, logger: logger)
        } catch {
            printError("\(config): error: \(error)")
            throw ExitCode(2)
        }
        do {
            try await DaemonSupervisor(path: config, logger: logger, levelOverride: logLevel).run(service, reloads: hangups.map { _ in () })
        } catch {
            printError("ted daemon: \(StartupFailure.advice(for: error))")
            throw ExitCode(1)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A logger writing structured lines to standard error, with their priority for the
/// journal when it reads them (`JournalLogHandler`).
func makeLogger(label: String, level: Logger.Level) -> Logger {
    Logger.ted(label: label, level: level)
}
