import Foundation
import Logging
import Synchronization
import Testing
import TEDConfig
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// A reload applies the file's `log-level` to the new daemon, unless `--log-level` fixed it.
@Suite struct DaemonReloadLevelTests {
    static func file(_ level: String?) -> String {
        "identity: 127.0.0.1\nlisten: 127.0.0.1:0\npolicy: [permit ip any any]\n" + (level.map { "log-level: \($0)\n" } ?? "")
    }

    /// The level each assembled daemon was given.
    final class Levels: Sendable {
        let levels = Mutex<[Logger.Level]>([])
        var all: [Logger.Level] { levels.withLock { $0 } }
    }

    static func supervisor(path: String, override: Logger.Level?, levels: Levels) -> DaemonSupervisor {
        // A handler that keeps its level (the no-op handler's is always critical).
        var base = Logger(label: "test") { JournalLogHandler(label: $0, journal: false, write: { _ in }) }
        base.logLevel = .info
        return DaemonSupervisor(path: path, logger: base, levelOverride: override) { configuration, logger in
            levels.levels.withLock { $0.append(logger.logLevel) }
            return DaemonService(configuration: configuration, logger: logger)
        }
    }

    @Test func aReloadTakesTheFilesLevel() throws {
        let path = "/tmp/ted-level-\(getpid())-\(UUID().uuidString.prefix(8)).yaml"
        defer { unlink(path) }
        let levels = Levels()
        let supervisor = Self.supervisor(path: path, override: nil, levels: levels)
        try Self.file("debug").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(supervisor.reloaded()?.logger.logLevel == .debug)
        try Self.file("error").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(supervisor.reloaded()?.logger.logLevel == .error)
        try Self.file(nil).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(supervisor.reloaded()?.logger.logLevel == .info)
        #expect(levels.all == [.debug, .error, .info])
        // A bad level refuses the reload: no daemon is assembled.
        try Self.file("loud").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(supervisor.reloaded() == nil)
        #expect(levels.all.count == 3)
    }

    @Test func theCommandLinesLevelWins() throws {
        let path = "/tmp/ted-level-\(getpid())-\(UUID().uuidString.prefix(8)).yaml"
        defer { unlink(path) }
        let levels = Levels()
        let supervisor = Self.supervisor(path: path, override: .warning, levels: levels)
        try Self.file("debug").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(supervisor.reloaded()?.logger.logLevel == .warning)
        #expect(levels.all == [.warning])
    }
}
