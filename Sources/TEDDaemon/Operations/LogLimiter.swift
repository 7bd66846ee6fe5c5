import NIOConcurrencyHelpers
import NIOCore

/// At most one log line per key and interval: a flood of equal errors (one per hostile
/// datagram) must not become a flood of log lines. Counters still count every one.
final class LogLimiter: Sendable {
    private let interval: TimeAmount
    private let last = NIOLockedValueBox([String: NIODeadline]())

    init(interval: TimeAmount = .seconds(1)) { self.interval = interval }

    /// Whether a line for `key` may be logged now (and, if so, starts its interval).
    func allow(_ key: String, now: NIODeadline = .now()) -> Bool {
        last.withLockedValue { last in
            if let previous = last[key], now - previous < interval { return false }
            if last.count > 1024 { last.removeAll() }
            last[key] = now
            return true
        }
    }
}
