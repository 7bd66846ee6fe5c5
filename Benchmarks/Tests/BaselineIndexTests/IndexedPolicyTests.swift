import BaselineIndex
import Foundation
import Testing
import TEDBenchSupport
import TEDModel

/// The index gives exactly the linear scan's first match.
@Suite struct IndexedPolicyTests {
    @Test func agreesWithTheLinearScanOnRandomPolicies() throws {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<20 {
            var lines: [String] = []
            for _ in 0..<200 {
                let action = rng.next() % 5 == 0 ? "deny" : "permit"
                let proto = ["ip", "tcp", "udp", "icmp"][Int(rng.next() % 4)]
                func side() -> String {
                    switch rng.next() % 4 {
                    case 0: return "any"
                    case 1: return "host 198.18.\(rng.next() % 4).\(rng.next() % 8)"
                    case 2: return "198.18.\(rng.next() % 4).0/\(24 + rng.next() % 8)"
                    default: return "198.18.0.\(rng.next() % 8) 0.0.\(rng.next() % 4).\(rng.next() % 8)"
                    }
                }
                let ports = proto == "tcp" || proto == "udp" ? (rng.next() % 2 == 0 ? " eq \(rng.next() % 4)" : "") : ""
                lines.append("\(action) \(proto) \(side()) \(side())\(ports)")
            }
            let policy = try Policy(lines: lines)
            let index = IndexedPolicy(policy)
            for _ in 0..<500 {
                let packet = Packet(proto: [IPProtocol.tcp, .udp, .icmp][Int(rng.next() % 3)],
                                    source: IPAddress(v4: 0xC612_0000 | UInt32(rng.next() % 4) << 8 | UInt32(rng.next() % 8)),
                                    destination: IPAddress(v4: 0xC612_0000 | UInt32(rng.next() % 4) << 8 | UInt32(rng.next() % 8)),
                                    sourcePort: UInt16(rng.next() % 4), destinationPort: UInt16(rng.next() % 4))!
                for role in Role.allCases {
                    #expect(index.firstMatch(packet, as: role)?.index == policy.firstMatch(packet, as: role)?.index)
                }
            }
        }
    }

    @Test func mixedFamiliesAndAny() throws {
        let policy = try Policy(lines: ["permit udp 2001:db8:1::/48 any eq 53", "permit ip any any", "permit ip 198.18.1.0/24 any"])
        let index = IndexedPolicy(policy)
        let v6 = try Packet(parsing: "udp [2001:db8:1::1]:1 [2001:db8:2::2]:53")
        #expect(index.firstMatch(v6, as: .initiator)?.index == 1)
        let v4 = try Packet(parsing: "tcp 198.18.1.1:1 198.18.2.2:2")
        #expect(index.firstMatch(v4, as: .initiator)?.index == 2)
    }
}

/// On real ClassBench rule sets (Benchmarks/classbench) both roles agree with the scan.
@Suite struct ClassBenchAgreementTests {
    @Test func indexAgreesOnClassBench2k() throws {
        let set = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("classbench/acl1_2k.txt").path
        let (rules, policy) = try classBenchPolicy(set)
        #expect(rules.count == 2572)
        let index = IndexedPolicy(policy)
        var rng = SplitMix64(seed: 5)
        for step in 0..<3000 {
            let packet: Packet
            if step % 10 == 0 {
                packet = Packet(proto: .tcp, source: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                destination: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                sourcePort: UInt16(truncatingIfNeeded: rng.next()), destinationPort: UInt16(truncatingIfNeeded: rng.next()))!
            } else {
                packet = try #require(rules[Int(rng.next() % UInt64(rules.count))].packet(using: &rng))
            }
            #expect(index.firstMatch(packet, as: .responder)?.index == policy.firstMatch(packet, as: .responder)?.index)
            #expect(index.firstMatch(packet, as: .initiator)?.index == policy.firstMatch(packet, as: .initiator)?.index)
        }
    }
}
