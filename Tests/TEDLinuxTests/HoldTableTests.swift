import Testing
import TEDModel
@testable import TEDLinux

/// The held-packet table: exemptions first, then the entries outbound in ACL order
/// (permit marks, deny passes), and the tunnels' set elements.
@Suite struct HoldTableTests {
    func rules(_ lines: [String]) throws -> [String] {
        let table = HoldTable(policy: try Policy(lines: lines), probePort: 500, tunnelDevice: "ipsec0", queue: 7)
        return table.ruleset.split(separator: "\n").filter { $0.hasPrefix("add rule inet ted-hold hold ") }
            .map { String($0.dropFirst("add rule inet ted-hold hold ".count)) }
    }

    @Test func exemptionsComeFirstThenEntriesOutboundInOrder() throws {
        let chain = try rules(["deny ip 198.18.1.0/24 198.18.3.128/25", "permit tcp 198.18.1.0 0.0.0.255 198.18.0.0/15 eq 443"])
        #expect(chain == [
            "fib daddr type local return",
            "meta ipsec exists return",
            "iifname \"ipsec0\" return",
            "udp dport 500 @th,208,8 { 240, 241, 242 } return",
            "ip saddr . ip daddr . meta l4proto . th sport . th dport @tunnelled4 return",
            "ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @tunnelled6 return",
            "meta nfproto ipv4 ip saddr 198.18.1.0/24 ip daddr 198.18.3.128/25 return comment \"entry 1\"",
            "meta nfproto ipv4 ip saddr 198.18.1.0/24 ip daddr 198.18.0.0/15 meta l4proto 6 th dport 443 meta mark set meta mark | 0x40000000 return comment \"entry 2\"",
        ])
    }

    @Test func setsKeepTheirElementsAcrossAnInstall() throws {
        let table = HoldTable(policy: try Policy(lines: ["permit ip any any"]), probePort: 500, tunnelDevice: nil, queue: 7)
        let lines = table.ruleset.split(separator: "\n")
        #expect(!lines.contains { $0.contains("flush set") || $0.contains("delete") })
        #expect(lines.contains("flush chain inet ted-hold hold"))
        #expect(table.queueRule.suffix(2) == ["--queue-num", "7"])
        #expect(!table.queueRule.contains("--queue-bypass"), "no reader must mean dropped")
    }

    @Test func elementsCoverWhatTheTunnelCarries() throws {
        let tcp = TrafficSelector(proto: .tcp, local: AddressPattern("198.18.1.0/24")!, remote: AddressPattern("198.18.2.0/24")!,
                                  remotePorts: PortRange(443, 443)!)
        #expect(HoldTable.element(tcp) == "198.18.1.0/24 . 198.18.2.0/24 . 6 . 0-65535 . 443")
        let any = TrafficSelector(proto: .any, local: AddressPattern("2001:db8:1::/48")!, remote: AddressPattern("2001:db8::/32")!)
        #expect(HoldTable.element(any) == "2001:db8:1::/48 . 2001:db8::/32 . 0-255 . 0-65535 . 0-65535")
        let icmp6 = TrafficSelector(proto: .icmp, local: AddressPattern("2001:db8:1::/48")!, remote: AddressPattern("2001:db8::/32")!)
        #expect(HoldTable.element(icmp6).contains(" . 58 . 0-65535 . 0-65535"))
    }
}
