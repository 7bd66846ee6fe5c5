import NIOCore
import Testing
@testable import TEDEngine

/// What the engine makes of settings outside their valid ranges (callers other than the
/// configuration, which refuses them, may pass anything): the nearest valid value.
@Suite struct DiscoverySettingsTests {
    static func longest(_ wait: TimeAmount) -> TimeAmount {
        DiscoverySettings(retries: 0, retransmitSchedule: [wait], jitter: 0).longestDiscovery
    }

    /// Each wait is clamped to `validWait` (mutant E83).
    @Test func waitsAreClampedToTheValidRange() {
        #expect(Self.longest(.milliseconds(1)) == .milliseconds(10))
        #expect(Self.longest(.milliseconds(11)) == .milliseconds(11))
        #expect(Self.longest(.hours(2)) == .hours(1))
        #expect(DiscoverySettings(retries: 99, retransmitSchedule: [.seconds(1)], jitter: 0).longestDiscovery
            == .seconds(11))
    }

    /// Pending discoveries and cache entries are clamped to their ranges (mutants E84, E85).
    @Test(arguments: [(-3, 1, 0), (0, 1, 0), (7, 7, 7), (2_000_000, 1_000_000, 1_000_000)])
    func tableSizesAreClampedToTheValidRange(given: Int, pending: Int, cache: Int) {
        let settings = DiscoverySettings(maxPending: given, maxCache: given)
        #expect(settings.effectiveMaxPending == pending)
        #expect(settings.effectiveMaxCache == cache)
    }
}
