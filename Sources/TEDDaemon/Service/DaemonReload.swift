import Logging
import ServiceLifecycle
import Synchronization
import TEDConfig
import UnixSignals

/// `ted daemon` across reloads (SIGHUP, `systemctl reload ted`).
///
/// A reload re-reads the configuration file and checks it as `ted check` does, then
/// assembles the daemon it describes; a file that fails either is refused with one error
/// line and the running daemon goes on untouched. A good one replaces the running daemon
/// in place, in this process: the old one stops as on SIGTERM, which leaves the XFRM
/// traps, the inbound guard, the hold table and ted's connections in charon (fail closed),
/// and the new one takes them over as a restarted ted does: its traps go in as updates
/// before what the new policy no longer has is removed (never a moment without traps for
/// traffic both policies protect), its keys and responder connections are loaded, and
/// live tunnels the new policy still permits are adopted with their SAs while the others
/// are taken down.
public struct DaemonSupervisor: Sendable {
    let path: String
    /// The logger of the first daemon; each daemon's level is its configuration's `log-level`
    /// unless `levelOverride` (`--log-level`) says otherwise.
    let logger: Logger
    let levelOverride: Logger.Level?
    /// Assembles a daemon with its logger (`DaemonAssembly.service`; tests pass their own).
    let assemble: @Sendable (Configuration, Logger) throws -> DaemonService

    public init(path: String, logger: Logger, levelOverride: Logger.Level? = nil,
                assemble: (@Sendable (Configuration, Logger) throws -> DaemonService)? = nil) {
        self.path = path
        self.logger = logger
        self.levelOverride = levelOverride
        self.assemble = assemble ?? { try DaemonAssembly.service(configuration: $0, logger: $1) }
    }

    /// The logger a daemon of `configuration` logs with: `--log-level` if given, else the file's `log-level`.
    public static func logger(_ base: Logger, for configuration: Configuration, override: Logger.Level?) -> Logger {
        var logger = base
        logger.logLevel = override ?? Logger.Level(configuration.logLevel)
        return logger
    }

    /// The group running now and the daemon a reload asked for, shared with the watcher.
    private final class Running: Sendable {
        let state = Mutex<(group: ServiceGroup?, next: (service: DaemonService, logger: Logger)?)>((nil, nil))
    }

    /// Runs `initial` until SIGTERM or SIGINT, replacing it on each good reload request
    /// from `reloads`.
    public func run(_ initial: DaemonService, reloads: some AsyncSequence<Void, Never> & Sendable,
                    gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let running = Running()
        let watcher = Task {
            for await _ in reloads {
                guard let next = reloaded() else { continue }
                let group = running.state.withLock { state in
                    state.next = next
                    return state.group
                }
                await group?.triggerGracefulShutdown()
            }
        }
        defer { watcher.cancel() }
        var service = initial
        var logger = self.logger
        while true {
            let group = ServiceGroup(configuration: .init(services: [.init(service: service)],
                                                          gracefulShutdownSignals: gracefulShutdownSignals,
                                                          cancellationSignals: [], logger: logger))
            // A reload that came while the previous daemon stopped is taken now.
            let pending = running.state.withLock { state in
                state.group = group
                return state.next
            }
            if pending != nil { await group.triggerGracefulShutdown() }
            try await group.run()
            guard let next = running.state.withLock({ state -> (service: DaemonService, logger: Logger)? in
                defer { state = (nil, nil) }
                return state.next
            }) else { return }
            logger = next.logger
            logger.notice("reloading: the new configuration is in place; traps, guard and tunnels carried over",
                          metadata: ["ted.config": "\(path)"])
            service = next.service
        }
    }

    /// The daemon the file now describes, with the logger of its `log-level`, or nil
    /// (logged) when it does not load or assemble.
    func reloaded() -> (service: DaemonService, logger: Logger)? {
        do {
            let configuration = try ConfigurationLoader.load(path: path)
            let logger = Self.logger(self.logger, for: configuration, override: levelOverride)
            return (try assemble(configuration, logger), logger)
        } catch let error as ConfigError {
            logger.error("reload refused, the running configuration stays", metadata: ["ted.error": "\(error.description)"])
        } catch {
            logger.error("reload refused, the running configuration stays", metadata: ["ted.error": "\(path): \(error)"])
        }
        return nil
    }
}
