import NIOCore
import Testing
import TEDEngine
@testable import TEDConfig

/// Every numeric setting is refused outside one range, declared once beside its default
/// (the engine's settings, or the daemon's options where the engine has none): each bound
/// is accepted, one step past it refused with that bound in the message.
@Suite struct SettingRangeTests {
    static let base = "identity: 198.51.100.1\npolicy: [permit ip any any]\npeers: [198.51.100.0/24]\n"

    /// `section: { key: value }`, with the key `ike` needs and retries 0 so that the
    /// doubling bound leaves `timeout` its whole range.
    static func yaml(_ section: String, _ key: String, _ value: String) -> String {
        let extra = section == "ike" ? ", psk: a long enough group key" : section == "discovery" && key != "retries" ? ", retries: 0" : ""
        return base + "\(section): { \(key): \(value)\(extra) }\n"
    }

    static func accepts(_ text: String) -> Bool { (try? ConfigurationLoader.parse(text, path: "r.yaml")) != nil }

    static func refused(_ text: String, naming bound: String) -> Bool {
        do {
            _ = try ConfigurationLoader.parse(text, path: "r.yaml")
            return false
        } catch {
            return "\(error)".contains(bound)
        }
    }

    /// Each of `accepted` loads; each of `refused` is refused, the message naming `bounds`.
    static func check(_ section: String, _ key: String, accepted: [String], refused: [String], naming bounds: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        for value in accepted { #expect(accepts(yaml(section, key, value)), "\(key): \(value)", sourceLocation: sourceLocation) }
        for value in refused {
            #expect(Self.refused(yaml(section, key, value), naming: bounds), "\(key): \(value)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [
        ("discovery", "retries", DiscoverySettings.validRetries),
        ("discovery", "max-pending", DiscoverySettings.validMaxPending),
        ("discovery", "max-cache", DiscoverySettings.validMaxCache),
        ("discovery", "entries", DiscoverySettings.validWantedEntries),
        ("responder", "burst", RateLimit.validBurst),
        ("responder", "max-sources", ResponderSettings.validMaxTrackedSources),
        ("hold", "per-flow", HeldPackets.Limits.validPerFlow),
        ("hold", "per-source", HeldPackets.Limits.validPerSource),
        ("hold", "packets", HeldPackets.Limits.validPackets),
        ("dataplane", "acquire-expires", DataplaneOptions.validAcquireExpires),
        ("dataplane", "max-selectors-per-entry", DataplaneOptions.validMaxSelectorsPerEntry),
        ("ike", "max-connections", IKEOptions.validMaxConnections),
        ("ike", "max-connections-per-peer", IKEOptions.validMaxConnectionsPerPeer),
    ])
    func wholeNumbers(section: String, key: String, range: ClosedRange<Int>) {
        Self.check(section, key, accepted: ["\(range.lowerBound)", "\(range.upperBound)"],
                   refused: ["\(range.lowerBound - 1)", "\(range.upperBound + 1)"], naming: "from \(range.lowerBound) to \(range.upperBound)")
    }

    @Test(arguments: [
        ("discovery", "timeout", DiscoverySettings.validWait.lowerBound.seconds...DiscoverySettings.validWait.upperBound.seconds),
        ("discovery", "cache-ttl", DiscoverySettings.validTTL.lowerBound.seconds...DiscoverySettings.validTTL.upperBound.seconds),
        ("discovery", "negative-ttl", DiscoverySettings.validTTL.lowerBound.seconds...DiscoverySettings.validTTL.upperBound.seconds),
        ("hold", "time", HeldPackets.Limits.validTime.lowerBound.seconds...HeldPackets.Limits.validTime.upperBound.seconds),
        ("ike", "initiate-timeout", IKEOptions.validInitiateTimeout),
    ])
    func durations(section: String, key: String, range: ClosedRange<Double>) {
        Self.check(section, key, accepted: ["\(range.lowerBound)s", "\(range.upperBound)s"],
                   refused: ["\(range.lowerBound - 0.001)s", "\(range.upperBound + 1)s"],
                   naming: "from \(range.lowerBound) to \(range.upperBound) s")
    }

    @Test func holdBytes() {
        let range = HeldPackets.Limits.validBytes
        Self.check("hold", "bytes", accepted: ["\(range.lowerBound)", "\(range.upperBound)"],
                   refused: ["\(range.lowerBound - 1)", "\(range.upperBound + 1)"], naming: "'bytes'")
    }

    /// The configuration's defaults are the engine's.
    @Test func defaultsAreTheEngines() {
        let hold = HoldOptions(), limits = HeldPackets.Limits()
        #expect([hold.perFlow, hold.perSource, hold.packets, hold.bytes] == [limits.perFlow, limits.perSource, limits.packets, limits.bytes])
        let discovery = DiscoveryOptions(), settings = DiscoverySettings()
        #expect(discovery.retries == settings.retries && discovery.maxPending == settings.maxPending
            && discovery.maxCache == settings.maxCache && discovery.entries == settings.wantedEntries)
        #expect(discovery.cacheTTL == settings.cacheTTL.seconds && discovery.negativeTTL == settings.negativeTTL.seconds)
    }
}
