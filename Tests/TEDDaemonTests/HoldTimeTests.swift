import NIOCore
import Testing
import TEDConfig
@testable import TEDEngine
import TEDTestSupport
@testable import TEDDaemon

/// A held first packet outlives its discovery: the hold's default time and the engine's
/// retransmit schedule come from one place (`DiscoverySettings.longestDiscovery`).
@Suite struct HoldTimeTests {
    @Test(arguments: ["", "discovery: { retries: 5, timeout: 200ms }", "discovery: { retries: 0, timeout: 2s }"])
    func theDefaultHoldOutlivesEveryDiscovery(discovery: String) throws {
        let configuration = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip 198.18.1.0/24 198.18.0.0/16]
            \(discovery)
            """, path: "test.yaml")
        let settings = configuration.discoverySettings
        var rng = SeededRNG(seed: 7)
        var longest = Int64(0)
        for _ in 0..<2000 {
            let total = settings.drawWaits(using: &rng).reduce(Int64(0)) { $0 + $1.nanoseconds }
            #expect(total <= configuration.holdTime.nanoseconds)
            longest = max(longest, total)
        }
        // Not far beyond it either: the longest draw comes within 2% of the bound.
        #expect(Double(longest) >= 0.98 * Double(configuration.holdTime.nanoseconds))
    }

    @Test func anExplicitHoldTimeIsKept() throws {
        let configuration = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip 198.18.1.0/24 198.18.0.0/16]
            hold: { time: 3 }
            """, path: "test.yaml")
        #expect(configuration.holdTime == .seconds(3))
    }
}
