import NIOConcurrencyHelpers
import NIOCore

/// At most one log line per key and interval, and at most `linesPerInterval` in all: a
/// flood of equal errors (one per hostile datagram), or of errors each naming another
/// forged key, must not become a flood of log lines. Counters still count every one.
final class LogLimiter: Sendable {
    private let interval: TimeAmount
    private let linesPerInterval: Int
    private struct State {
        var last: [String: NIODeadline] = [:]
        var windowStart = NIODeadline.uptimeNanoseconds(0)
        var linesInWindow = 0
    }
    private let state = NIOLockedValueBox(State())

    init(interval: TimeAmount = .seconds(1), linesPerInterval: Int = .max) {
        self.interval = interval
        self.linesPerInterval = linesPerInterval
    }

    /// Whether a line for `key` may be logged now (and, if so, starts its interval).
    func allow(_ key: String, now: NIODeadline = .now()) -> Bool {
        state.withLockedValue { state in
            if let previous = state.last[key], now - previous < interval { return false }
            if now - state.windowStart >= interval {
                state.windowStart = now
                state.linesInWindow = 0
            }
            guard state.linesInWindow < linesPerInterval else { return false }
            state.linesInWindow += 1
            if state.last.count > 1024 { state.last.removeAll() }
            state.last[key] = now
            return true
        }
    }
}
