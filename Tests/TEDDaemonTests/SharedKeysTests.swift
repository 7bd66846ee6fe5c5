import Testing
import TEDConfig
import TEDModel
@testable import TEDVici
@testable import TEDDaemon

/// Who owns each pre-shared key ted loads. charon 5.9 takes a key when either end's
/// identity matches an owner, so no owner may ever hold this gateway's own identity.
@Suite struct SharedKeysTests {
    func configuration(_ peers: String, ike: String) throws -> Configuration {
        try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip any any]
            \(peers)
            ike: \(ike)
            """, path: "keys.yaml")
    }

    @Test func aPeersOwnKeyIsOwnedByItsPrefixOnly() throws {
        let c = try configuration("peers: [{ identity: 198.51.100.2, psk: \"gwB's own key\" }, { identity: 203.0.113.0/24, psk: \"site key\" }]",
                                  ike: "{ vici: /x }")
        #expect(SharedKeys.plan(c) == [
            SharedKey(id: "ted-psk-1", secret: "gwB's own key", owners: ["198.51.100.2"]),
            SharedKey(id: "ted-psk-2", secret: "site key", owners: ["203.0.113.0/24"]),
        ])
    }

    /// A prefix holding this gateway is split into the subnets beside it: together they
    /// hold every other address of the prefix and never this gateway's.
    @Test func aPrefixHoldingThisGatewayLosesExactlyItsAddress() throws {
        let owners = try #require(SharedKeys.plan(try configuration("peers: [198.51.100.0/24]", ike: "{ vici: /x, psk: \"the group key\" }")).first).owners
        #expect(owners == ["198.51.100.128/25", "198.51.100.64/26", "198.51.100.32/27", "198.51.100.16/28",
                           "198.51.100.8/29", "198.51.100.4/30", "198.51.100.2/31", "198.51.100.0"])
        let patterns = owners.compactMap { AddressPattern($0) }
        for last in 0...255 {
            let address = IPAddress("198.51.100.\(last)")!
            let holders = patterns.filter { $0.contains(address) }.count
            #expect(holders == (last == 1 ? 0 : 1), "198.51.100.\(last) is held \(holders) times")
        }
        let wildcard = try configuration("peers: [198.51.100.0/255.255.0.255]", ike: "{ vici: /x, psk: \"the group key\" }")
        #expect(SharedKeys.plan(wildcard).isEmpty)
    }

    /// The review's finding: the group key's owners left a keyed peer out only when its
    /// prefix was exactly equal, so a group member could authenticate as 198.51.100.2.
    /// Now no identity is owned by two keys.
    @Test func aPeerWithItsOwnKeyInsideTheGroupsPrefixIsOwnedByItsKeyAlone() throws {
        let c = try configuration("peers: [198.51.100.0/24, { identity: 198.51.100.2, protects: [198.18.2.0/24], psk: \"gwB's own key\" }]",
                                  ike: "{ vici: /x, psk: \"the group key\" }")
        let keys = SharedKeys.plan(c)
        #expect(keys.map(\.id) == ["ted-psk-1", "ted-psk"])
        #expect(keys[0].owners == ["198.51.100.2"])
        let patterns = keys.map { $0.owners.compactMap { AddressPattern($0) } }
        for last in 0...255 {
            let address = IPAddress("198.51.100.\(last)")!
            let owning = patterns.indices.filter { patterns[$0].contains { $0.contains(address) } }
            #expect(owning == (last == 1 ? [] : last == 2 ? [0] : [1]), "198.51.100.\(last) is owned by keys \(owning)")
        }
    }

    @Test func theGroupKeyIsOwnedByThePeersWithoutAKeyOfTheirOwn() throws {
        let c = try configuration("peers: [{ identity: 198.51.100.2, psk: \"gwB's own key\" }, 198.51.100.3, 203.0.113.0/24]",
                                  ike: "{ vici: /x, psk: \"the group key\" }")
        #expect(SharedKeys.plan(c) == [
            SharedKey(id: "ted-psk-1", secret: "gwB's own key", owners: ["198.51.100.2"]),
            SharedKey(id: "ted-psk", secret: "the group key", owners: ["198.51.100.3", "203.0.113.0/24"]),
        ])
        // Every peer has its own key: the group key has no owner left and is not loaded.
        let all = try configuration("peers: [{ identity: 198.51.100.2, psk: \"gwB's own key\" }]", ike: "{ vici: /x, psk: \"the group key\" }")
        #expect(SharedKeys.plan(all).map(\.id) == ["ted-psk-1"])
    }

    /// No key is ever loaded for any identity: a group key needs peers, and a peer's key
    /// whose prefix is only this gateway owns nothing and is not loaded.
    @Test func neverAKeyForAnyIdentity() throws {
        #expect(throws: ConfigError.self) { try configuration("", ike: "{ vici: /x, psk: \"the group key\" }") }
        let listed = try configuration("peers: [198.51.100.0/24]", ike: "{ vici: /x, psk: \"the group key\" }")
        #expect(!SharedKeys.plan(listed).isEmpty)
        #expect(SharedKeys.plan(listed).allSatisfy { !$0.owners.isEmpty && !$0.owners.contains("198.51.100.1") })
        let onlyMe = try configuration("peers: [{ identity: 198.51.100.1, psk: \"a key for myself\" }]", ike: "{ vici: /x }")
        #expect(SharedKeys.plan(onlyMe).isEmpty)
    }

    @Test func loadSharedNamesTheOwners() {
        let message = ViciController.sharedKeyMessage(SharedKey(id: "ted-psk-1", secret: "gwB's own key", owners: ["198.51.100.2"]))
        #expect(message["id"] == "ted-psk-1" && message["type"] == "IKE" && message["data"] == "gwB's own key")
        #expect(message.list("owners") == ["198.51.100.2"])
    }
}
