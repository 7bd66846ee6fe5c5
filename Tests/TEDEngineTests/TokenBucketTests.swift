import NIOCore
import Testing
@testable import TEDEngine

/// The token bucket's clamps and refill arithmetic, at their edges.
@Suite struct TokenBucketTests {
    static func has(_ bucket: inout TokenBucket, _ limit: RateLimit, _ now: NIODeadline) -> Bool {
        bucket.hasToken(limit: limit, now: now)
    }

    /// A burst below 1 is taken as 1: a bucket always lets its first event through (mutant E30).
    @Test(arguments: [0, -5, 1])
    func aBurstBelowOneStillAdmitsOne(burst: Int) {
        let limit = RateLimit(perSecond: 0, burst: burst)
        var bucket = TokenBucket(limit: limit, now: t0)
        #expect(Self.has(&bucket, limit, t0))
        bucket.take()
        #expect(!Self.has(&bucket, limit, at(10_000)), "perSecond 0 never refills")
    }

    @Test func oneTokenPerSecondRefillsExactlyOnTheSecond() {
        let limit = RateLimit(perSecond: 1, burst: 1)
        var bucket = TokenBucket(limit: limit, now: t0)
        #expect(Self.has(&bucket, limit, t0))
        bucket.take()
        #expect(!Self.has(&bucket, limit, at(999)))
        #expect(Self.has(&bucket, limit, at(1000)))
        bucket.take()
        #expect(!Self.has(&bucket, limit, at(1500)))
        #expect(Self.has(&bucket, limit, at(2000)))
    }

    @Test func aClockThatStepsBackRefillsNothing() {
        let limit = RateLimit(perSecond: 1, burst: 1)
        var bucket = TokenBucket(limit: limit, now: at(5000))
        bucket.take()
        #expect(!Self.has(&bucket, limit, t0))
        #expect(!Self.has(&bucket, limit, at(5999)))
        #expect(Self.has(&bucket, limit, at(6000)))
    }
}
