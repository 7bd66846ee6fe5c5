import Testing
import TEDTestSupport
@testable import TEDModel

/// The child an initiator proposes: inside the intersection, holding P, and sharing no
/// packet with any earlier entry of its own policy. Checked against brute force over a
/// small universe of packets on random policies (non-contiguous masks, port ranges).
@Suite struct TrafficSelectorTests {
    /// 10.0.0.0-7: only the low 3 bits vary, so 8 x 8 addresses, two protocols, ports 0-3.
    static let base: UInt32 = 0x0a00_0000
    static let universe: [Packet] = {
        var packets: [Packet] = []
        for proto in [IPProtocol.tcp, .udp] {
            for source in 0..<8 {
                for destination in 0..<8 {
                    for sport in 0..<4 {
                        for dport in 0..<4 {
                            packets.append(Packet(proto: proto, source: IPAddress(v4: base | UInt32(source)),
                                                  destination: IPAddress(v4: base | UInt32(destination)),
                                                  sourcePort: UInt16(sport), destinationPort: UInt16(dport))!)
                        }
                    }
                }
            }
        }
        return packets
    }()

    static func randomSide(_ rng: inout SeededRNG) -> AddressMatch {
        if Int.random(in: 0..<6, using: &rng) == 0 { return .any }
        let mask = UInt32.random(in: 0..<8, using: &rng)
        let address = UInt32.random(in: 0..<8, using: &rng) & mask
        return .pattern(AddressPattern(family: .v4, address: UInt128(base | address), mask: UInt128(0xffff_fff8 | mask)))
    }

    static func randomPorts(_ rng: inout SeededRNG) -> PortRange {
        if Bool.random(using: &rng) { return .all }
        let low = UInt16.random(in: 0..<4, using: &rng)
        return PortRange(low, UInt16.random(in: low..<4, using: &rng))!
    }

    static func randomEntry(_ rng: inout SeededRNG, action: PolicyEntry.Action) -> PolicyEntry {
        let proto = [IPProtocol.any, .tcp, .udp].randomElement(using: &rng)!
        return PolicyEntry(action: action, proto: proto, local: randomSide(&rng),
                           localPorts: proto.isAny ? .all : randomPorts(&rng), remote: randomSide(&rng),
                           remotePorts: proto.isAny ? .all : randomPorts(&rng))
    }

    @Test func proposalsHoldPAndNothingAnEarlierEntryOwns() throws {
        var rng = SeededRNG(seed: 42)
        var checked = 0, narrowed = 0
        for _ in 0..<2000 {
            let entries = (0..<Int.random(in: 1...6, using: &rng)).map { _ in
                Self.randomEntry(&rng, action: Bool.random(using: &rng) ? .permit : .deny)
            } + [Self.randomEntry(&rng, action: .permit)]
            let policy = Policy(rules: entries.enumerated().map { PolicyRule(index: $0.offset + 1, entry: $0.element, text: "") })
            let responder = Self.randomEntry(&rng, action: .permit)
            for packet in Self.universe.shuffled(using: &rng).prefix(20) {
                guard let rule = policy.firstMatch(packet, as: .initiator), rule.entry.action == .permit,
                      let local = rule.entry.proxy(as: .initiator, family: .v4),
                      let remote = PolicyEntry(action: .permit, proto: responder.proto, local: responder.remote,
                                               localPorts: responder.remotePorts, remote: responder.local,
                                               remotePorts: responder.localPorts).proxy(as: .initiator, family: .v4),
                      let intersection = local.intersection(remote), intersection.contains(packet) else { continue }
                let earlier = entries.prefix(rule.index - 1)
                let box = try #require(TrafficSelector.proposal(intersection: intersection, packet: packet,
                                                                excluding: Array(earlier)))
                #expect(box.contains(packet))
                for candidate in Self.universe where box.contains(candidate) {
                    #expect(intersection.contains(candidate), "\(box) holds \(candidate) outside \(intersection)")
                    #expect(earlier.allSatisfy { !$0.matchesOutbound(candidate) },
                            "\(box) holds \(candidate), which an earlier entry owns")
                }
                checked += 1
                if earlier.contains(where: { entry in Self.universe.contains { intersection.contains($0) && entry.matchesOutbound($0) } }) {
                    narrowed += 1
                }
            }
        }
        #expect(checked > 500 && narrowed > 100, "checked \(checked), narrowed \(narrowed)")
        print("proposals checked: \(checked), narrowed by an earlier entry: \(narrowed)")
    }

    /// The case: `deny ip A B-part` above `permit ip A B`: the child leaves B-part out.
    @Test func aDenyAboveThePermitIsLeftOut() throws {
        let policy = try Policy(lines: ["deny ip 198.18.1.0/24 198.18.2.128/25", "permit ip 198.18.1.0/24 198.18.0.0/15"])
        let intersection = Proxy(proto: .any, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!),
                                 responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!))!
        let packet = try Packet(parsing: "udp 198.18.1.10:1 198.18.2.20:53")
        let box = try #require(TrafficSelector.proposal(intersection: intersection, packet: packet,
                                                        excluding: [policy.rules[0].entry]))
        #expect(box == TrafficSelector(proto: .any, local: AddressPattern("198.18.1.0/24")!, remote: AddressPattern("198.18.2.0/25")!))
        // A packet inside the denied part is never proposed at all: it matches the deny first.
        #expect(TrafficSelector.proposal(intersection: intersection, packet: try Packet(parsing: "udp 198.18.1.10:1 198.18.2.200:53"),
                                         excluding: [policy.rules[0].entry])?.contains(try Packet(parsing: "udp 198.18.1.10:1 198.18.2.200:53")) != true)
    }

    /// A cut along ports or protocol keeps more than one along addresses.
    @Test func theCutKeepsTheMost() throws {
        let deny = try #require(try ACLParser.parseLine("deny tcp 198.18.1.0/24 198.18.2.0/24 eq 22"))
        let intersection = Proxy(proto: .any, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!),
                                 responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!))!
        let udp = try #require(TrafficSelector.proposal(intersection: intersection,
                                                        packet: try Packet(parsing: "udp 198.18.1.10:1 198.18.2.20:53"),
                                                        excluding: [deny]))
        #expect(udp.proto == .udp && udp.local.prefixLength == 24 && udp.remote.prefixLength == 24)
        let https = try #require(TrafficSelector.proposal(intersection: intersection,
                                                          packet: try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443"),
                                                          excluding: [deny]))
        #expect(https.proto == .tcp && https.remotePorts == PortRange(23, 65535) && https.remote.prefixLength == 24)
    }
}
