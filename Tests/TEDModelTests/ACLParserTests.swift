import Foundation
import Testing
@testable import TEDModel

@Suite struct ACLParserTests {
    @Test(arguments: [
        ("permit ip 198.18.1.0 0.0.0.255 198.18.2.0 0.0.0.255", "ip 198.18.1.0/24 <-> 198.18.2.0/24"),
        ("permit tcp host 198.18.1.10 198.18.2.0/24 eq https", "tcp 198.18.1.10/32 <-> 198.18.2.0/24 port 443"),
        ("permit tcp 198.18.1.0/24 range 1024 65535 198.18.2.0/24 eq 443", "tcp 198.18.1.0/24 port 1024-65535 <-> 198.18.2.0/24 port 443"),
        ("permit udp any 198.18.2.0/24 lt 1024", "udp 0.0.0.0/0 <-> 198.18.2.0/24 port 0-1023"),
        ("permit udp any 198.18.2.0/24 gt 1023", "udp 0.0.0.0/0 <-> 198.18.2.0/24 port 1024-65535"),
        ("permit ip 198.18.0.5 0.0.255.0 any", "ip 198.18.0.5/255.255.0.255 <-> 0.0.0.0/0"),
        ("permit icmp 198.18.1.0/24 198.18.2.0/24 echo", "icmp 198.18.1.0/24 port 8 <-> 198.18.2.0/24"),
        ("permit icmp 198.18.1.0/24 198.18.2.0/24 3 4", "icmp 198.18.1.0/24 port 3 <-> 198.18.2.0/24 port 4"),
        ("permit ipv6-icmp 2001:db8:1::/48 2001:db8:2::/48 echo-request", "ipv6-icmp 2001:db8:1::/48 port 128 <-> 2001:db8:2::/48"),
        ("deny   udp 2001:db8:1::/48 eq 53 any", "udp 2001:db8:1::/48 port 53 <-> ::/0"),
        ("PERMIT 47 198.18.1.0/24 198.18.2.0/24", "gre 198.18.1.0/24 <-> 198.18.2.0/24"),
        ("permit sctp any any eq 5060", "sctp 0.0.0.0/0 <-> 0.0.0.0/0 port 5060"),
    ])
    func accepts(line: String, proxy: String) throws {
        let entry = try #require(try ACLParser.parseLine(line))
        let family = entry.family ?? .v4
        #expect(entry.proxy(as: .initiator, family: family)?.description == proxy)
    }

    @Test(arguments: [
        ("allow ip any any", 1, "expected 'permit'"),
        ("permit", 7, "expected a protocol"),
        ("permit foo any any", 8, "unknown protocol"),
        ("permit ip any", 14, "expected a destination"),
        ("permit ip 198.18.1.0 any", 22, "invalid wildcard mask"),
        ("permit ip 198.18.1.0/40 any", 11, "invalid address/length"),
        ("permit ip 198.18.1.300/24 any", 11, "invalid address/length"),
        ("permit ip any any eq 80", 19, "needs tcp, udp"),
        ("permit tcp any any eq 70000", 23, "invalid port"),
        ("permit tcp any any range 90 80", 20, "inverted"),
        ("permit tcp any any neq 80", 20, "'neq' is not one port range"),
        ("permit tcp any any lt 0", 20, "matches no port"),
        ("permit tcp any any gt 65535", 20, "matches no port"),
        ("permit ip 198.18.1.0/24 2001:db8::/32", 25, "source is IPv4 but destination is IPv6"),
        ("permit ip any any extra", 19, "unexpected 'extra'"),
        ("permit icmp any any nosuchtype", 21, "invalid ICMP type"),
        ("permit ip host 1.2.3 any", 16, "invalid address"),
    ])
    func rejects(line: String, column: Int, message: String) {
        #expect {
            _ = try ACLParser.parseLine(line)
        } throws: { error in
            guard let error = error as? SyntaxError else { return false }
            return error.column == column && error.message.contains(message)
        }
    }

    @Test func remarksAndBlankLinesGiveNoEntry() throws {
        #expect(try ACLParser.parseLine("remark traffic to site B") == nil)
        #expect(try ACLParser.parseLine("   ") == nil)
    }

    @Test func selectorRefusesAnAction() {
        #expect(throws: SyntaxError.self) { try ACLParser.parseSelector("permit ip any any") }
    }
}

@Suite struct PolicyTests {
    let policy = try! Policy(lines: [
        "remark site A to site B",
        "deny tcp 198.18.1.0/24 198.18.2.0/24 eq 22",
        "permit ip 198.18.1.0/24 198.18.2.0/24",
        "permit tcp 2001:db8:1::/48 2001:db8:2::/48 eq 443",
    ])

    func packet(_ text: String) -> Packet { try! Packet(parsing: text) }

    @Test func firstMatchWinsAsInitiator() {
        #expect(policy.rules.count == 3)
        #expect(policy.firstMatch(packet("tcp 198.18.1.10:40000 198.18.2.20:22"), as: .initiator)?.index == 1)
        #expect(policy.firstMatch(packet("tcp 198.18.1.10:40000 198.18.2.20:443"), as: .initiator)?.index == 2)
        #expect(policy.firstMatch(packet("tcp [2001:db8:1::10]:40000 [2001:db8:2::20]:443"), as: .initiator)?.index == 3)
        #expect(policy.firstMatch(packet("tcp [2001:db8:1::10]:40000 [2001:db8:2::20]:80"), as: .initiator) == nil)
        #expect(policy.firstMatch(packet("tcp 198.18.2.20:22 198.18.1.10:40000"), as: .initiator) == nil)
    }

    @Test func responderMatchesTheSummaryMirrored() {
        let responder = try! Policy(lines: ["permit tcp 198.18.2.0/24 eq 443 198.18.0.0/16"])
        #expect(responder.firstMatch(packet("tcp 198.18.1.10:40000 198.18.2.20:443"), as: .responder)?.index == 1)
        #expect(responder.firstMatch(packet("tcp 198.18.1.10:443 198.18.2.20:40000"), as: .responder) == nil)
        #expect(responder.firstMatch(packet("tcp 198.18.1.10:40000 198.18.2.20:443"), as: .initiator) == nil)
    }

    /// `icmp` in an ACL is ICMPv6 on IPv6, wherever ted reads it: a ping6 (next header 58)
    /// matches `permit icmp any any`, type names are ICMPv6's, and proxies carry 58.
    @Test func icmpMeansICMPv6OnIPv6() throws {
        let policy = try Policy(lines: ["permit icmp any any", "permit icmp 2001:db8:1::/48 2001:db8:2::/48 echo"])
        let ping6 = packet("ipv6-icmp [2001:db8:1::10]:128 [2001:db8:2::20]:0")
        let ping = packet("icmp 198.18.1.10:8 198.18.2.20:0")
        #expect(policy.firstMatch(ping6, as: .initiator)?.index == 1)
        #expect(policy.firstMatch(ping, as: .initiator)?.index == 1)
        #expect(CompiledPolicy(policy).firstMatchPosition(ping6, as: .initiator) == 0)
        #expect(policy.rules[1].entry.proto == .icmpv6 && policy.rules[1].entry.localPorts == .single(128))
        #expect(policy.rules[0].entry.proxy(as: .initiator, family: .v6)?.proto == .icmpv6)
        #expect(policy.rules[0].entry.proxy(as: .initiator, family: .v4)?.proto == .icmp)
        // A summary says what it says (the wire keeps its byte); matching reads `icmp` on IPv6 as ICMPv6.
        let written = packet("icmp [2001:db8:1::10]:128 [2001:db8:2::20]:0")
        #expect(written.proto == .icmp && policy.firstMatch(written, as: .initiator)?.index == 1)
        #expect(CompiledPolicy(policy).firstMatchPosition(written, as: .initiator) == 0)
    }

    @Test func icmpTypeAndCodeKeepTheirSides() {
        let initiator = try! Policy(lines: ["permit icmp 198.18.1.0/24 198.18.2.0/24 echo"])
        let responder = try! Policy(lines: ["permit icmp 198.18.2.0/24 198.18.1.0/24 echo"])
        let echo = packet("icmp 198.18.1.10:8 198.18.2.20:0")
        #expect(initiator.firstMatch(echo, as: .initiator) != nil)
        #expect(responder.firstMatch(echo, as: .responder) != nil)
        #expect(responder.firstMatch(packet("icmp 198.18.1.10:0 198.18.2.20:0"), as: .responder) == nil)
        let i = initiator.rules[0].entry.proxy(as: .initiator, family: .v4)!
        let r = responder.rules[0].entry.proxy(as: .responder, family: .v4)!
        #expect(i.intersection(r)?.contains(echo) == true)
    }

    @Test func badLineReportsItsIndex() {
        #expect {
            _ = try Policy(lines: ["permit ip any any", "permit tcp any any eq nope"])
        } throws: { ($0 as? PolicyLineError)?.lineIndex == 1 }
    }
}

@Suite struct PacketSyntaxTests {
    @Test(arguments: [
        "tcp 198.18.1.10:40000 198.18.2.20:443", "udp [2001:db8:1::10]:5353 [2001:db8:2::20]:53",
        "icmp 198.18.1.10:8 198.18.2.20:0", "esp 198.18.1.10 198.18.2.20", "udp 2001:db8::1 2001:db8::2",
    ])
    func roundTrips(text: String) throws {
        #expect(try Packet(parsing: text).description == text.replacingOccurrences(of: "udp 2001:db8::1 2001:db8::2", with: "udp [2001:db8::1] [2001:db8::2]"))
    }

    @Test(arguments: [
        "", "tcp", "tcp 198.18.1.10", "xyz 1.2.3.4 1.2.3.5", "tcp 198.18.1.10:99999 198.18.2.20:1",
        "esp 198.18.1.10:5 198.18.2.20", "tcp [2001:db8::1 [2001:db8::2]", "tcp 1.2.3.4 1.2.3.5 extra",
    ])
    func rejects(text: String) {
        #expect(throws: SyntaxError.self) { try Packet(parsing: text) }
    }
}
