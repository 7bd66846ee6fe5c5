import NIOCore

/// A rate: a sustained number of events per second and a burst allowance.
public struct RateLimit: Hashable, Sendable, CustomStringConvertible {
    /// Tokens added per second (0: only the burst, never refilled).
    public var perSecond: Int
    /// Bucket size: events allowed back to back after a quiet period.
    public var burst: Int

    public init(perSecond: Int, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Rates the bucket arithmetic holds without overflow; the configuration refuses others.
    public static let validPerSecond = 0...1_000_000
    /// Bursts the bucket arithmetic holds without overflow; the configuration refuses others.
    public static let validBurst = 1...1_000_000

    /// The valid limit nearest this one (callers other than the configuration may pass anything).
    var clamped: RateLimit {
        RateLimit(perSecond: perSecond.clamped(to: Self.validPerSecond), burst: burst.clamped(to: Self.validBurst))
    }

    public var description: String { "\(perSecond)/s burst \(burst)" }
}

/// A token bucket counted in billionths of a token so that refill is exact integer arithmetic.
struct TokenBucket: Hashable, Sendable {
    private static let scale: Int64 = 1_000_000_000
    private var nanoTokens: Int64
    private var refilledAt: NIODeadline

    /// A full bucket.
    init(limit: RateLimit, now: NIODeadline) {
        nanoTokens = Int64(limit.clamped.burst) * Self.scale
        refilledAt = now
    }

    /// Whether a token is available at `now` (after refilling); takes nothing.
    mutating func hasToken(limit: RateLimit, now: NIODeadline) -> Bool {
        refill(limit: limit.clamped, now: now)
        return nanoTokens >= Self.scale
    }

    /// Whether less than half the burst is left (as of the last `hasToken`).
    func isBelowHalf(limit: RateLimit) -> Bool {
        nanoTokens < Int64(limit.clamped.burst) * Self.scale / 2
    }

    /// Takes one token; call only after `hasToken` said yes.
    mutating func take() {
        nanoTokens = max(0, nanoTokens - Self.scale)
    }

    private mutating func refill(limit: RateLimit, now: NIODeadline) {
        // A clock that steps back refills nothing and is not remembered.
        guard now > refilledAt else { return }
        let capacity = Int64(limit.burst) * Self.scale
        let elapsed = (now - refilledAt).nanoseconds
        refilledAt = now
        let (added, overflow) = elapsed.multipliedReportingOverflow(by: Int64(limit.perSecond))
        if overflow || added >= capacity - nanoTokens {
            nanoTokens = capacity
        } else {
            nanoTokens += added
        }
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
