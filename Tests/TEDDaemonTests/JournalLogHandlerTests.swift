import Foundation
import Logging
import Synchronization
import Testing
import TEDConfig
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// Lines journald files at their own priority (`<N>` first when standard error is the
/// journal), otherwise exactly what swift-log's `StreamLogHandler` writes, which the
/// scripts grep (`reload refused`, `esp_in_kernel=false`).
@Suite struct JournalLogHandlerTests {
    final class Lines: Sendable, TextOutputStream {
        let lines = Mutex<[String]>([])
        func write(_ string: String) { lines.withLock { $0.append(string) } }
        var all: [String] { lines.withLock { $0 } }
    }
    struct Stream: TextOutputStream, Sendable {
        let lines: Lines
        mutating func write(_ string: String) { lines.write(string) }
    }

    static func logger(journal: Bool, into lines: Lines, level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "ted") { JournalLogHandler(label: $0, journal: journal, write: { lines.write($0) }) }
        logger.logLevel = level
        return logger
    }

    /// Without the time: the part both handlers agree on to the byte.
    static func afterTimestamp(_ line: String) -> Substring {
        line[line.index(after: line.firstIndex(of: " ") ?? line.startIndex)...]
    }

    @Test func outsideTheJournalTheLineIsStreamLogHandlers() {
        let ours = Lines(), theirs = Lines()
        var stream = Logger(label: "ted") { StreamLogHandler(label: $0, stream: Stream(lines: theirs), metadataProvider: nil) }
        stream.logLevel = .trace
        let logger = Self.logger(journal: false, into: ours)
        for level in Logger.Level.allCases {
            for target in [logger, stream] {
                target.log(level: level, "reload refused, the running configuration stays",
                           metadata: ["ted.error": "t.yaml:3:12: error: x", "ted.esp_in_kernel": "false"])
                target.log(level: level, "ted stopped")
            }
        }
        #expect(ours.all.count == 14)
        #expect(ours.all.map(Self.afterTimestamp) == theirs.all.map(Self.afterTimestamp))
        #expect(ours.all.allSatisfy { !$0.hasPrefix("<") })
        #expect(ours.all[0].hasSuffix(" trace ted: ted.error=t.yaml:3:12: error: x ted.esp_in_kernel=false [TEDDaemonTests] reload refused, the running configuration stays\n"))
    }

    @Test func inTheJournalEachLineStartsWithItsPriority() {
        let lines = Lines()
        let logger = Self.logger(journal: true, into: lines)
        for level in Logger.Level.allCases { logger.log(level: level, "tunnel up", metadata: ["ted.peer": "198.51.100.2"]) }
        #expect(lines.all.map { String($0.prefix(3)) } == ["<7>", "<7>", "<6>", "<5>", "<4>", "<3>", "<2>"])
        // After the priority, the same line as outside the journal.
        #expect(lines.all.allSatisfy { $0.contains(" ted: ted.peer=198.51.100.2 [TEDDaemonTests] tunnel up\n") })
        #expect(lines.all[4].dropFirst(3).hasPrefix(JournalLogHandler.timestamp().prefix(10)))
    }

    @Test func theLevelFiltersLines() {
        let lines = Lines()
        let logger = Self.logger(journal: true, into: lines, level: .warning)
        logger.info("discovered")
        logger.warning("the IKE daemon went away")
        #expect(lines.all.count == 1 && lines.all[0].hasPrefix("<4>"))
    }

    /// `JOURNAL_STREAM` counts only when it names the descriptor's own file.
    @Test func theJournalIsTheStreamJournalStreamNames() throws {
        let path = "/tmp/ted-journal-\(getpid())-\(UUID().uuidString.prefix(8))"
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        try #require(fd >= 0)
        defer { close(fd); unlink(path) }
        var status = stat()
        try #require(fstat(fd, &status) == 0)
        let mine = "\(status.st_dev):\(status.st_ino)"
        #expect(JournalLogHandler.isJournal(mine, fd: fd))
        #expect(!JournalLogHandler.isJournal(nil, fd: fd))
        #expect(!JournalLogHandler.isJournal("\(status.st_dev):\(status.st_ino + 1)", fd: fd))
        #expect(!JournalLogHandler.isJournal("\(status.st_dev &+ 1):\(status.st_ino)", fd: fd))
        #expect(!JournalLogHandler.isJournal("", fd: fd))
        #expect(!JournalLogHandler.isJournal("\(status.st_ino)", fd: fd))
    }

    @Test func everyConfiguredLevelIsSwiftLogsOfTheSameName() {
        for level in LogLevel.allCases { #expect(Logger.Level(level).rawValue == level.rawValue) }
    }
}
