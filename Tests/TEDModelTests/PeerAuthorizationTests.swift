import Testing
@testable import TEDModel

/// Overlapping `peers` entries: the most specific decides, and each entry's region (where
/// it decides) is exactly the addresses it decides for.
@Suite struct PeerAuthorizationTests {
    static func peer(_ identity: String, protects: [String]? = nil) -> PeerAuthorization {
        PeerAuthorization(identity: AddressPattern(identity)!, protects: protects.map { $0.map { AddressPattern($0)! } })
    }

    @Test func theMostSpecificEntryDecidesAndTheFirstAmongEquals() {
        let peers = [Self.peer("198.51.100.0/24"), Self.peer("198.51.100.2", protects: ["198.18.2.0/24"]),
                     Self.peer("198.51.100.0/25"), Self.peer("198.51.100.0/255.255.255.128")]
        #expect(peers.decidingIndex(for: IPAddress("198.51.100.2")!) == 1)
        #expect(peers.decidingIndex(for: IPAddress("198.51.100.3")!) == 2, "a /25 and an equal mask: the first listed")
        #expect(peers.decidingIndex(for: IPAddress("198.51.100.200")!) == 0)
        #expect(peers.decidingIndex(for: IPAddress("203.0.113.1")!) == nil)
    }

    /// Brute force over a /24 and its neighbours: every address lies in the region of the
    /// entry that decides for it and in no other region.
    @Test func regionsAreExactlyWhereEachEntryDecides() {
        let peers = [Self.peer("198.51.100.0/24"), Self.peer("198.51.100.2"), Self.peer("198.51.100.0/26"),
                     Self.peer("198.51.100.0/24"), Self.peer("198.51.100.0/255.255.255.1"), Self.peer("198.51.101.0/24")]
        let regions = peers.indices.map { peers.region(of: $0) }
        #expect(regions[3].isEmpty, "a duplicate decides nowhere")
        for third in 99...102 {
            for last in 0...255 {
                let address = IPAddress("198.51.\(third).\(last)")!
                let holders = regions.indices.filter { regions[$0].contains { $0.contains(address) } }
                #expect(holders == peers.decidingIndex(for: address).map { [$0] } ?? [], "\(address)")
            }
        }
        let excluded = peers.region(of: 0, excluding: [.host(IPAddress("198.51.100.1")!)])
        #expect(!excluded.contains { $0.contains(IPAddress("198.51.100.1")!) })
        #expect(excluded.contains { $0.contains(IPAddress("198.51.100.201")!) })
    }

    @Test func overlappingPairsAreListed() {
        let peers = [Self.peer("198.51.100.0/24"), Self.peer("203.0.113.0/24"), Self.peer("198.51.100.2")]
        #expect(peers.overlappingPairs.map { [$0.0, $0.1] } == [[0, 2]])
    }
}
