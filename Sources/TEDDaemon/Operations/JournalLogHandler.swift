import Logging
import TEDConfig

#if canImport(Glibc)
import Glibc
#endif

/// ted's log lines on standard error, as swift-log's `StreamLogHandler` writes them
/// (`<time> <level> <label>: <key=value ...> [<source>] <message>`), each prefixed with its
/// sd-daemon(3) priority (`<6>` for info, `<4>` for warning, ...) when standard error is
/// the journal's stream: journald then files each line at its own priority, so
/// `journalctl -p warning -u ted` shows warnings and worse only. Elsewhere (a terminal, a
/// file, a test) the lines are exactly `StreamLogHandler`'s.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    public var metadata: Logger.Metadata = [:]
    let label: String
    /// Whether each line starts with its priority.
    let journal: Bool
    /// Writes one whole line.
    let write: @Sendable (String) -> Void

    public init(label: String, journal: Bool, metadataProvider: Logger.MetadataProvider? = nil,
                write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.journal = journal
        self.metadataProvider = metadataProvider
        self.write = write
    }

    /// A handler writing to standard error, with priorities when standard error is the
    /// journal's stream (`JOURNAL_STREAM`, `isJournal`).
    public static func standardError(label: String) -> JournalLogHandler {
        JournalLogHandler(label: label, journal: isJournal(getenv("JOURNAL_STREAM").map { String(cString: $0) }, fd: 2),
                          metadataProvider: LoggingSystem.metadataProvider, write: writeToStandardError)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        write(Self.line(timestamp: Self.timestamp(), level: event.level, label: label, metadata: merged,
                        source: event.source, message: "\(event.message)", journal: journal))
    }

    /// One line: `StreamLogHandler`'s layout, metadata sorted by key, behind `<N>` in the journal.
    static func line(timestamp: String, level: Logger.Level, label: String, metadata: Logger.Metadata,
                     source: String, message: String, journal: Bool) -> String {
        let pretty = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let prefix = journal ? "<\(priority(level))>" : ""
        return "\(prefix)\(timestamp) \(level)\(label.isEmpty ? "" : " ")\(label):\(pretty.isEmpty ? "" : " \(pretty)") [\(source)] \(message)\n"
    }

    /// The syslog priority sd-daemon(3) reads from a line's `<N>` prefix.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Whether `fd` is the stream systemd connected to the journal: `JOURNAL_STREAM` is set
    /// (`<device>:<inode>`) and names that descriptor's file, as systemd.exec(5) advises
    /// (a child whose standard error was redirected inherits the variable, not the journal).
    static func isJournal(_ variable: String?, fd: Int32) -> Bool {
        guard let variable else { return false }
        let parts = variable.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// Local time, as `StreamLogHandler` writes it: `2026-12-08T01:50:44+0000`.
    static func timestamp() -> String {
        var now = time(nil)
        var local = tm()
        guard localtime_r(&now, &local) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// One `write(2)` per line: lines from several threads never interleave.
    @Sendable static func writeToStandardError(_ line: String) {
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Glibc.write(2, base + offset, buffer.count - offset)
            }
            if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { return }
        }
    }
}

extension Logger.Level {
    /// The configuration's level (`log-level`).
    public init(_ level: LogLevel) {
        switch level {
        case .trace: self = .trace
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}

extension Logger {
    /// ted's logger: structured lines on standard error (`JournalLogHandler`).
    public static func ted(label: String, level: Logger.Level) -> Logger {
        var logger = Logger(label: label) { JournalLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}
