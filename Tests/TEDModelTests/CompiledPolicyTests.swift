import Testing
import TEDTestSupport
@testable import TEDModel

/// The compiled classifier gives exactly the linear scan's first match, in both roles.
@Suite struct CompiledPolicyTests {
    /// Random policies over a small address and port universe, so that entries overlap,
    /// with non-contiguous masks, port ranges, ICMP type/code, `any`, both IP versions.
    @Test func agreesWithTheScanOnRandomPolicies() throws {
        var rng = SeededRNG(seed: 2026)
        for round in 0..<24 {
            var rules: [PolicyRule] = []
            for index in 1...240 {
                let entry = RandomPolicy.entry(using: &rng)
                rules.append(PolicyRule(index: index, entry: entry, text: "random \(round).\(index)"))
            }
            let policy = Policy(rules: rules)
            // Small samples make large nodes choose their bit from a sample (4096 entries in use).
            let compiled = CompiledPolicy(policy, leafSize: Int(rng.next() % 2) == 0 ? 2 : 8,
                                          sampleSize: round % 3 == 0 ? 16 : 4096)
            #expect(compiled.statistics.nodes > 10, "the trees split")
            for _ in 0..<400 {
                let packet = RandomPolicy.packet(using: &rng)
                for role in Role.allCases {
                    let expected = policy.firstMatch(packet, as: role)?.index
                    let actual = compiled.firstMatch(packet, as: role)?.index
                    #expect(actual == expected, "\(packet) as \(role) in round \(round)")
                }
            }
        }
    }

    /// Every entry's own boundary packets, just inside and just outside each port bound.
    @Test func agreesWithTheScanAtEveryPortBound() throws {
        var rng = SeededRNG(seed: 7)
        var rules: [PolicyRule] = []
        for index in 1...300 {
            rules.append(PolicyRule(index: index, entry: RandomPolicy.entry(using: &rng), text: "\(index)"))
        }
        let policy = Policy(rules: rules)
        let compiled = CompiledPolicy(policy, leafSize: 2)
        for rule in rules {
            let entry = rule.entry
            let bounds = [entry.localPorts.lower, entry.localPorts.upper, entry.remotePorts.lower, entry.remotePorts.upper]
            for bound in bounds {
                for port in [bound &- 1, bound, bound &+ 1] {
                    for proto in [IPProtocol.tcp, .udp, .icmp] {
                        let family: IPAddress.Family = entry.family ?? .v4
                        let packet = RandomPolicy.packet(proto: proto, family: family, sourcePort: port,
                                                         destinationPort: port, using: &rng)
                        for role in Role.allCases {
                            #expect(compiled.firstMatch(packet, as: role)?.index == policy.firstMatch(packet, as: role)?.index,
                                    "\(packet) as \(role)")
                        }
                    }
                }
            }
        }
    }

    @Test func icmpTypeAndCodeKeepTheirSidesInBothRoles() throws {
        let policy = try Policy(lines: [
            "permit icmp 198.18.1.0/24 198.18.2.0/24 8 0",
            "deny tcp 198.18.1.0/24 eq 8 198.18.2.0/24",
            "permit ip any any",
        ])
        let compiled = CompiledPolicy(policy)
        let echo = try Packet(parsing: "icmp 198.18.2.5:8 198.18.1.5:0")
        #expect(compiled.firstMatch(echo, as: .responder)?.index == 1)
        let reply = try Packet(parsing: "icmp 198.18.2.5:0 198.18.1.5:8")
        #expect(compiled.firstMatch(reply, as: .responder)?.index == 3)
        let tcp = try Packet(parsing: "tcp 198.18.2.5:1000 198.18.1.5:8")
        #expect(compiled.firstMatch(tcp, as: .responder)?.index == 2)
    }

    @Test func absentPortsMatchEveryRange() throws {
        let lines = (0..<64).map { "permit tcp 198.18.1.0/24 198.18.2.0/24 eq \(1000 + $0)" } + ["deny ip any any"]
        let policy = try Policy(lines: lines)
        let compiled = CompiledPolicy(policy, leafSize: 2)
        #expect(compiled.statistics.depth > 3, "port tests were built")
        let noPorts = try Packet(parsing: "tcp 198.18.1.1 198.18.2.2")
        #expect(compiled.firstMatch(noPorts, as: .initiator)?.index == 1)
        let port = try Packet(parsing: "tcp 198.18.1.1:5 198.18.2.2:1063")
        #expect(compiled.firstMatch(port, as: .initiator)?.index == 64)
        let gre = try Packet(parsing: "gre 198.18.1.1 198.18.2.2")
        #expect(compiled.firstMatch(gre, as: .initiator)?.index == 65)
    }

    @Test func bothVersionsAndAny() throws {
        let policy = try Policy(lines: ["permit udp 2001:db8:1::/48 any eq 53", "permit ip any any", "permit ip 198.18.1.0/24 any"])
        let compiled = CompiledPolicy(policy)
        #expect(compiled.firstMatch(try Packet(parsing: "udp [2001:db8:1::1]:1 [2001:db8:2::2]:53"), as: .initiator)?.index == 1)
        #expect(compiled.firstMatch(try Packet(parsing: "udp [2001:db8:1::1]:1 [2001:db8:2::2]:54"), as: .initiator)?.index == 2)
        #expect(compiled.firstMatch(try Packet(parsing: "tcp 198.18.1.1:1 198.18.2.2:2"), as: .initiator)?.index == 2)
        #expect(CompiledPolicy(try Policy(lines: [])).firstMatch(try Packet(parsing: "tcp 1.1.1.1 2.2.2.2"), as: .responder) == nil)
        let mixed = PolicyEntry(action: .deny, proto: .any, local: .pattern(.any(.v4)), remote: .pattern(.any(.v6)))
        let mixedPolicy = Policy(rules: [PolicyRule(index: 1, entry: mixed, text: "mixed"),
                                         PolicyRule(index: 2, entry: try #require(try ACLParser.parseLine("permit ip any any")), text: "any")])
        for packet in [try Packet(parsing: "tcp 1.1.1.1 2.2.2.2"), try Packet(parsing: "tcp ::1 ::2")] {
            #expect(mixedPolicy.firstMatch(packet, as: .initiator)?.index == 2)
            #expect(CompiledPolicy(mixedPolicy).firstMatch(packet, as: .initiator)?.index == 2)
        }
    }
}

/// On ClassBench acl1_2k (Benchmarks/classbench) both roles agree with the scan.
@Suite struct CompiledPolicyClassBenchTests {
    @Test func agreesOnClassBench2k() throws {
        let rules = try ClassBenchFixture.rules("acl1_2k.txt")
        #expect(rules.count == 2572)
        let policy = try Policy(lines: rules.map(\.responderLine))
        let compiled = CompiledPolicy(policy)
        var rng = SeededRNG(seed: 11)
        var matched = 0
        for step in 0..<4000 {
            let packet: Packet
            if step % 10 == 0 {
                packet = Packet(proto: .tcp, source: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                destination: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                sourcePort: UInt16(truncatingIfNeeded: rng.next()), destinationPort: UInt16(truncatingIfNeeded: rng.next()))!
            } else {
                packet = try #require(rules[Int(rng.next() % UInt64(rules.count))].packet(using: &rng))
            }
            let expected = policy.firstMatch(packet, as: .responder)?.index
            if expected != nil { matched += 1 }
            #expect(compiled.firstMatch(packet, as: .responder)?.index == expected, "\(packet)")
            #expect(compiled.firstMatch(packet, as: .initiator)?.index == policy.firstMatch(packet, as: .initiator)?.index)
        }
        #expect(matched > 3000, "the trace mostly hits rules")
    }
}

/// Random entries and packets over a small universe, so that entries overlap.
enum RandomPolicy {
    static let v4Base: UInt128 = 0xC612_0000
    static let v6Base: UInt128 = 0x2001_0db8 << 96

    /// Address bits that vary: a few low bits and, for IPv6, a few high ones.
    static func universe(_ family: IPAddress.Family) -> UInt128 {
        family == .v4 ? 0x3FF : 0x3F | (0xF << 64)
    }

    static func address(_ family: IPAddress.Family, using rng: inout SeededRNG) -> IPAddress {
        let base = family == .v4 ? v4Base : v6Base
        return IPAddress(family: family, bits: base | (UInt128(rng.next()) | UInt128(rng.next()) << 64) & universe(family))
    }

    static func side(_ family: IPAddress.Family, using rng: inout SeededRNG) -> AddressMatch {
        let address = self.address(family, using: &rng).bits
        let fixed = family.allOnes & ~universe(family)
        let mask: UInt128
        switch rng.next() % 5 {
        case 0: return .any
        case 1: mask = family.allOnes
        case 2: mask = AddressPattern.mask(family: family, prefixLength: family.bitWidth - Int(rng.next() % 11))!.bits
        default: mask = fixed | ((UInt128(rng.next()) | UInt128(rng.next()) << 64) & universe(family))  // non-contiguous
        }
        return .pattern(AddressPattern(family: family, address: address, mask: mask))
    }

    static func ports(using rng: inout SeededRNG) -> PortRange {
        switch rng.next() % 4 {
        case 0: return .all
        case 1: return .single(UInt16(rng.next() % 10))
        case 2:
            let lower = UInt16(rng.next() % 10)
            return PortRange(lower, lower + UInt16(rng.next() % 6))!
        default: return PortRange(UInt16(rng.next() % 10), .max)!
        }
    }

    static func entry(using rng: inout SeededRNG) -> PolicyEntry {
        let proto = [IPProtocol.any, .tcp, .tcp, .udp, .icmp, .icmpv6, .gre][Int(rng.next() % 7)]
        let family: IPAddress.Family = rng.next() % 3 == 0 ? .v6 : .v4
        let withPorts = proto.allowsPortSelectors || rng.next() % 8 == 0
        return PolicyEntry(action: rng.next() % 4 == 0 ? .deny : .permit, proto: proto,
                           local: side(family, using: &rng), localPorts: withPorts ? ports(using: &rng) : .all,
                           remote: side(family, using: &rng), remotePorts: withPorts ? ports(using: &rng) : .all)
    }

    static func port(using rng: inout SeededRNG) -> UInt16? {
        switch rng.next() % 12 {
        case 0: nil
        case 1: .max
        default: UInt16(rng.next() % 12)
        }
    }

    static func packet(using rng: inout SeededRNG) -> Packet {
        let proto = [IPProtocol.tcp, .udp, .icmp, .icmpv6, .gre, .any][Int(rng.next() % 6)]
        let family: IPAddress.Family = rng.next() % 3 == 0 ? .v6 : .v4
        let ports = proto.allowsPortSelectors
        return packet(proto: proto, family: family, sourcePort: ports ? port(using: &rng) : nil,
                      destinationPort: ports ? port(using: &rng) : nil, using: &rng)
    }

    static func packet(proto: IPProtocol, family: IPAddress.Family, sourcePort: UInt16?, destinationPort: UInt16?,
                       using rng: inout SeededRNG) -> Packet {
        Packet(proto: proto, source: address(family, using: &rng), destination: address(family, using: &rng),
               sourcePort: sourcePort, destinationPort: destinationPort)!
    }
}
