import Testing
import TEDTestSupport
@testable import TEDModel

/// An entry's own share (what the responder's IKE children hold): brute force over a small
/// universe of packets on random policies with non-contiguous masks and port ranges.
@Suite struct EntryShareTests {
    /// `TrafficSelectorTests.universe` (tcp and udp with ports) with icmp, gre and a
    /// protocol `EntryShare.namedProtocols` leaves out (ipip, 4), without ports.
    static let universe: [Packet] = TrafficSelectorTests.universe + [IPProtocol.icmp, .gre, IPProtocol(4)].flatMap { proto in
        (0..<64).map { pair in
            Packet(proto: proto, source: IPAddress(v4: TrafficSelectorTests.base | UInt32(pair >> 3)),
                   destination: IPAddress(v4: TrafficSelectorTests.base | UInt32(pair & 7)), sourcePort: nil, destinationPort: nil)!
        }
    }

    static func randomPolicy(_ rng: inout SeededRNG) -> Policy {
        let entries = (0..<Int.random(in: 2...7, using: &rng)).map { _ in
            TrafficSelectorTests.randomEntry(&rng, action: Bool.random(using: &rng) ? .permit : .deny)
        }
        return Policy(rules: entries.enumerated().map { PolicyRule(index: $0.offset + 1, entry: $0.element, text: "") })
    }

    static func pieces(_ policy: Policy, _ position: Int) -> [PolicyEntry]? {
        switch policy.share(ofPosition: position, family: .v4) {
        case .whole: [policy.rules[position].entry]
        case .pieces(let pieces): pieces
        case .fragmented: nil
        }
    }

    @Test func sharesAreDisjointOwnAndCompleteForNamedProtocols() throws {
        var rng = SeededRNG(seed: 7)
        var cut = 0, lostToUnnamed = 0
        var failures: [String] = []
        for _ in 0..<400 {
            let policy = Self.randomPolicy(&rng)
            let shares = policy.rules.indices.map { Self.pieces(policy, $0) }
            for packet in Self.universe {
                let first = policy.firstMatchPosition(packet, as: .initiator)
                var holders: [Int] = []
                for (position, pieces) in shares.enumerated() {
                    let holding = pieces?.count { $0.matchesOutbound(packet) } ?? 0
                    if holding > 1 { failures.append("two pieces of entry \(position + 1) hold \(packet)") }
                    if holding > 0 { holders.append(position) }
                }
                // Owned: a piece holds only what its entry is the first match for...
                if !holders.allSatisfy({ $0 == first }) {
                    failures.append("\(packet) first matches \(String(describing: first)), held by \(holders) in \(policy.rules.map(\.entry))")
                }
                // ...and every packet of a named protocol its entry first matches.
                if let first, shares[first] != nil, holders.isEmpty {
                    if packet.proto != IPProtocol(4) { failures.append("\(packet) first matches entry \(first + 1), no piece holds it") }
                    lostToUnnamed += 1
                }
            }
            cut += shares.count { $0.map { $0.count != 1 } ?? false }
        }
        #expect(failures.count == 0, "\(failures.count) failures, first: \(failures.prefix(3))")
        #expect(cut > 100 && lostToUnnamed > 0, "cut \(cut), lost to an unnamed protocol \(lostToUnnamed)")
    }

    /// The trees find the same earlier entries as the scan (leaves of one entry, so every
    /// kind of node is walked; IPv6 and `any` sides too).
    @Test func theTreesFindWhatTheScanFinds() {
        var rng = SeededRNG(seed: 11)
        var found = 0, failures: [String] = []
        for _ in 0..<300 {
            var policy = Self.randomPolicy(&rng)
            if Bool.random(using: &rng) {
                let v6 = try! Policy(lines: ["permit udp 2001:db8::/32 eq 53 2001:db8:1::/48", "deny ip 2001:db8::/31 any"])
                policy = Policy(rules: (policy.rules + v6.rules).enumerated().map { PolicyRule(index: $0.offset + 1, entry: $0.element.entry, text: "") })
            }
            let compiled = CompiledPolicy(policy, leafSize: 1, sampleSize: 4096)
            for position in policy.rules.indices {
                for family in [IPAddress.Family.v4, .v6] {
                    let scan = policy.earlierPositions(sharingWith: position, family: family)
                    let trees = compiled.earlierPositions(sharingWith: position, family: family)
                    if scan != trees { failures.append("entry \(position + 1) \(family): scan \(scan), trees \(trees)") }
                    found += scan.count
                }
            }
        }
        #expect(failures.count == 0, "\(failures.count) differ, first: \(failures.prefix(3))")
        #expect(found > 500, "found \(found)")
    }

    /// What the responder serves for `permit ip 198.18.2.0/24 198.18.1.0/24` below a deny
    /// of part of it, and below a deny of one protocol and port.
    @Test func theIssuesCases() throws {
        let policy = try Policy(lines: ["deny ip 198.18.2.128/25 198.18.1.0/24", "permit ip 198.18.2.0/24 198.18.1.0/24"])
        #expect(policy.share(ofPosition: 1, family: .v4) == .pieces([try #require(try ACLParser.parseLine("permit ip 198.18.2.0/25 198.18.1.0/24"))]))
        #expect(policy.share(ofPosition: 0, family: .v4) == .whole)
        #expect(policy.share(ofPosition: 1, family: .v6) == .whole)

        let telnet = try Policy(lines: ["deny tcp any any eq 23", "permit ip 198.18.2.0/24 198.18.1.0/24"])
        guard case .pieces(let pieces) = telnet.share(ofPosition: 1, family: .v4) else {
            Issue.record("no pieces")
            return
        }
        #expect(pieces.map(\.proto) == [.udp, .icmp, .sctp, .gre, .tcp, .tcp])
        #expect(pieces.filter { $0.proto == .tcp }.map(\.remotePorts) == [PortRange(0, 22)!, PortRange(24, 65535)!])
    }

    @Test func tooManyPiecesIsFragmented() throws {
        // Each host deny (one in every /24) cuts the piece holding it into up to 24.
        let denies = (0..<256).map { "deny ip host 198.18.\($0).7 198.18.1.0/24" }
        let policy = try Policy(lines: denies + ["permit ip 198.18.0.0/16 198.18.1.0/24"])
        #expect(policy.share(ofPosition: 256, family: .v4) == .fragmented)
        let fewer = try Policy(lines: Array(denies.prefix(7)) + ["permit ip 198.18.2.0/24 198.18.1.0/24"])
        guard case .pieces(let pieces) = fewer.share(ofPosition: 7, family: .v4) else {
            Issue.record("fragmented")
            return
        }
        #expect(pieces.count <= EntryShare.maxPieces)
    }

    @Test func subtractingPatternsAndRanges() {
        let parts = AddressPattern("198.18.2.0/24")!.subtracting(AddressPattern("198.18.2.7")!)
        #expect(parts.map(\.description) == ["198.18.2.128/25", "198.18.2.64/26", "198.18.2.32/27", "198.18.2.16/28",
                                             "198.18.2.8/29", "198.18.2.0/30", "198.18.2.4/31", "198.18.2.6/32"])
        // A non-contiguous pattern: the cut keeps every other bit free.
        let odd = AddressPattern("198.18.2.0/24")!.subtracting(AddressPattern("198.18.2.1/255.255.255.1")!)
        #expect(odd.map(\.description) == ["198.18.2.0/255.255.255.1"])
        #expect(PortRange.all.subtracting(PortRange(23, 23)!) == [PortRange(0, 22)!, PortRange(24, 65535)!])
        #expect(PortRange(23, 23)!.subtracting(.all) == [])
        #expect(PortRange(10, 20)!.subtracting(PortRange(30, 40)!) == [PortRange(10, 20)!])
    }
}
