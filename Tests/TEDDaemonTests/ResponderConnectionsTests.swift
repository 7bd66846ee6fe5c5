import Testing
import TEDConfig
import TEDModel
@testable import TEDDaemon

/// What peers may start over IKE to this gateway: the review found one `%any` connection
/// whose children were each entry's whole remote half, so any authenticated peer could
/// take another peer's traffic. Each `peers` entry now has its own connections.
@Suite struct ResponderConnectionsTests {
    func plan(_ peers: String) throws -> ResponderConnections.Plan {
        let configuration = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy:
              - deny ip 198.18.1.0/24 198.18.3.128/25
              - permit ip 198.18.1.0/24 198.18.0.0/15
            \(peers)
            ike: { vici: /x, psk: "the group key" }
            """, path: "responder.yaml")
        return ResponderConnections.plan(configuration, lookup: configuration.policy)
    }

    /// The review's shape: gwB protects 198.18.2.0/24, the branches 198.18.3.0/24. A
    /// branch's connection holds children for 198.18.3.0/24 only (less the deny), so its
    /// proposal for gwB's prefix fits no child of it.
    @Test func aPeerGetsChildrenOnlyForWhatItProtects() throws {
        let plan = try plan("""
            peers:
              - { identity: 198.51.100.2, protects: [198.18.2.0/24], psk: "gwB's own key" }
              - { identity: 203.0.113.0/24, protects: [198.18.3.0/24] }
            """)
        #expect(plan.connections.map(\.name) == ["ted-responder-p1", "ted-responder-p2"])
        #expect(plan.connections.map(\.remoteAddress) == ["198.51.100.2/32", "203.0.113.0/24"])
        #expect(plan.connections.map(\.remoteID) == ["198.51.100.2", "203.0.113.0/24"])
        #expect(plan.connections[0].children.map(\.remoteTS) == [["198.18.2.0/24"]])
        #expect(plan.connections[1].children.map(\.remoteTS) == [["198.18.3.0/25"]])
        #expect(plan.connections.allSatisfy { $0.children.allSatisfy { $0.localTS == ["198.18.1.0/24"] } })
    }

    /// Overlapping entries: the bare /24 beside 198.51.100.2 with `protects` gets the /24
    /// without .2 (and without this gateway), so .2 reaches only its own connection.
    @Test func theMostSpecificEntryDecidesWhoReachesWhichConnection() throws {
        let plan = try plan("""
            peers:
              - 198.51.100.0/24
              - { identity: 198.51.100.2, protects: [198.18.2.0/24] }
            """)
        let broad = plan.connections.filter { $0.name.hasPrefix("ted-responder-p1") }
        let narrow = try #require(plan.connections.first { $0.name == "ted-responder-p2" })
        let holders = broad.compactMap { AddressPattern($0.remoteAddress) }
        for last in 0...255 {
            let address = IPAddress("198.51.100.\(last)")!
            #expect(holders.filter { $0.contains(address) }.count == (last == 1 || last == 2 ? 0 : 1), "\(address)")
        }
        // The permit less the deny: ten prefixes of 198.18.0.0/15 around 198.18.3.128/25, all of them.
        #expect(broad.allSatisfy { $0.children.count == 10 && !$0.children.contains { $0.remoteTS.contains("198.18.3.128/25") } })
        #expect(narrow.children.map(\.remoteTS) == [["198.18.2.0/24"]])
        #expect(narrow.remoteAddress == "198.51.100.2/32")
    }

    /// Certificates pin the identity as keys do: a certificate of the CA from inside one
    /// `peers` region cannot authenticate as an identity of another.
    @Test func withoutPeersOneConnectionForAnyoneAndCertificatesPinTheRegion() throws {
        let open = try ResponderConnections.plan(
            try ConfigurationLoader.parse("identity: 198.51.100.1\npolicy: [permit ip 198.18.1.0/24 198.18.0.0/15]\nike: { vici: /x, certificate: c, private-key: k, ca-certificate: a }",
                                          path: "open.yaml"),
            lookup: Policy(lines: ["permit ip 198.18.1.0/24 198.18.0.0/15"]))
        #expect(open.connections.map(\.name) == ["ted-responder"] && open.connections[0].remoteAddress == "%any")
        let certificates = try ResponderConnections.plan(
            try ConfigurationLoader.parse("""
                identity: 198.51.100.1
                policy: [permit ip 198.18.1.0/24 198.18.0.0/15]
                peers: [{ identity: 203.0.113.0/24, protects: [198.18.3.0/24] }]
                ike: { vici: /x, certificate: c, private-key: k, ca-certificate: a }
                """, path: "certs.yaml"),
            lookup: Policy(lines: ["permit ip 198.18.1.0/24 198.18.0.0/15"]))
        #expect(certificates.connections.map(\.remoteID) == ["203.0.113.0/24"])
        #expect(certificates.connections.map(\.remoteAddress) == ["203.0.113.0/24"])
    }
}
