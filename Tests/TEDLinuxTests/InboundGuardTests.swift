import Testing
import TEDModel
@testable import TEDLinux

/// The inbound guard's nftables rules: what comes back in clear from a permit entry's
/// remote half to its local half is dropped, in ACL order, with tunnels and TED exempt.
@Suite struct InboundGuardTests {
    func ruleset(_ lines: [String], tunnel: String? = "ipsec0") throws -> [String] {
        let guardTable = InboundGuard(policy: try Policy(lines: lines), probePort: 500, listenPort: 500, tunnelDevice: tunnel)
        return guardTable.ruleset.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test func exemptionsComeFirstThenEntriesInOrder() throws {
        let rules = try ruleset(["deny tcp 198.18.1.0/24 eq 22 198.18.0.0/15",
                                 "permit ip 198.18.1.0/24 198.18.0.0/15"])
        let chain = Array(rules.drop { $0 != "chain guard {" }.dropFirst().prefix(6))
        #expect(chain == [
            "iifname \"ipsec0\" accept",
            "meta ipsec exists accept",
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept",
            "udp dport 500 @th,208,8 { 240, 241, 242 } accept",
            "meta nfproto ipv4 ip saddr 198.18.0.0/15 ip daddr 198.18.1.0/24 meta l4proto 6 th dport 22 accept comment \"entry 1\"",
            "meta nfproto ipv4 ip saddr 198.18.0.0/15 ip daddr 198.18.1.0/24 counter drop comment \"entry 2\"",
        ])
    }

    @Test func portsAreMirroredAndMasksMayBeNonContiguous() throws {
        let rules = try ruleset(["permit udp 198.18.1.0 0.0.0.255 range 1000 2000 198.18.2.5 0.0.255.0 eq 53"], tunnel: nil)
        #expect(rules.contains(
            "meta nfproto ipv4 ip saddr & 255.255.0.255 == 198.18.0.5 ip daddr 198.18.1.0/24 meta l4proto 17 th sport 53 th dport 1000-2000 counter drop comment \"entry 1\""))
        #expect(!rules.contains { $0.hasPrefix("iifname") })
    }

    @Test func anyBecomesBothFamiliesAndIcmpMatchesItsFamily() throws {
        let rules = try ruleset(["permit icmp any any"])
        #expect(rules.contains("meta nfproto ipv4 meta l4proto 1 counter drop comment \"entry 1\""))
        #expect(rules.contains("meta nfproto ipv6 meta l4proto 58 counter drop comment \"entry 1\""))
        let v6 = try ruleset(["permit tcp 2001:db8:1::/48 2001:db8::/32 eq 443"])
        #expect(v6.contains(
            "meta nfproto ipv6 ip6 saddr 2001:db8::/32 ip6 daddr 2001:db8:1::/48 meta l4proto 6 th sport 443 counter drop comment \"entry 1\""))
    }

    @Test func theTableReplacesItselfAndHooksInputAndForward() throws {
        let rules = try ruleset(["permit ip 198.18.1.0/24 198.18.0.0/15"])
        #expect(Array(rules.prefix(3)) == ["table inet ted-guard {}", "delete table inet ted-guard", "table inet ted-guard {"])
        #expect(rules.filter { $0 == "jump guard" }.count == 2)
        #expect(rules.contains("type filter hook input priority filter - 10; policy accept;"))
        #expect(rules.contains("type filter hook forward priority filter - 10; policy accept;"))
    }

    /// The outbound chain, the traps' second layer: tunnels, ESP, TED messages and this
    /// host's own IKE and TED sockets pass; then the entries in order, a permit's traffic
    /// leaving without an IPsec transform dropped.
    @Test func theOutboundChainDropsWhatAPermitProtectsLeavingWithoutATransform() throws {
        let rules = try ruleset(["deny tcp 198.18.1.0/24 198.18.0.0/15 eq 22", "permit ip 198.18.1.0/24 198.18.0.0/15"])
        let chain = Array(rules.drop { $0 != "chain outbound {" }.dropFirst().prefix(9))
        #expect(chain == [
            "type filter hook postrouting priority filter - 10; policy accept;",
            "oifname \"ipsec0\" accept",
            "rt ipsec exists accept",
            "meta l4proto esp accept",
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept",
            "udp dport 500 @th,208,8 { 240, 241, 242 } accept",
            "fib saddr type local udp sport { 500, 4500 } accept",
            "meta nfproto ipv4 ip saddr 198.18.1.0/24 ip daddr 198.18.0.0/15 meta l4proto 6 th dport 22 accept comment \"entry 1\"",
            "meta nfproto ipv4 ip saddr 198.18.1.0/24 ip daddr 198.18.0.0/15 counter drop comment \"entry 2\"",
        ])
    }
}
