import Testing
@testable import TEDModel

/// Boundaries of the model that scripts/mutants.txt showed no other test holding: each
/// test fails on at least one reviewed mutant (named in its comment) and passes on the code.
@Suite struct ModelMutantKillerTests {
    static func address(_ text: String) -> IPAddress { IPAddress(text)! }
    static func half(_ text: String, _ ports: PortRange = .all) -> HalfProxy { HalfProxy(pattern: AddressPattern(text)!, ports: ports) }

    // MARK: IPAddress text (M31-M36)

    @Test(arguments: [
        ("10.0.0.255", true), ("10.0.0.0255", false), ("010.0.0.1", true), ("1.2.3.0004", false),
        ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", true),    // 45 characters: the longest valid text
        ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555", false),  // 46
        ("::2:3:4:5:6:7:8", true), ("1:2:3:4:5:6:7::", true), ("1:2:3:4::5:6:7:8", false), ("::1:2:3:4:5:6:7:8", false),
        ("1:2:3:4:5:6:7:8", true), ("1:2:3:4:5:6:7:8:9", false), ("1:2:3:4:5:6:7", false),
    ])
    func addressTextBoundaries(text: String, valid: Bool) {
        #expect((IPAddress(text) != nil) == valid, "\(text)")
    }

    @Test func the45CharacterAddressHasItsValue() {
        #expect(IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")?.bits == UInt128.max)
    }

    @Test(arguments: [
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),   // the first of two equal runs is shortened
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"), // a single zero group is never "::"
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),     // the longest run wins
    ])
    func ipv6TextIsRFC5952(text: String, expected: String) {
        #expect(IPAddress(text)?.description == expected)
    }

    // MARK: Packet, Proxy: one IP version (M27, M28)

    @Test func aPacketOrProxyNeverMixesIPVersions() throws {
        #expect(Packet(proto: .tcp, source: Self.address("10.0.0.1"), destination: Self.address("2001:db8::1")) == nil)
        #expect(throws: SyntaxError.self) { try Packet(parsing: "tcp 10.0.0.1 2001:db8::1") }
        #expect(Proxy(proto: .tcp, initiatorSide: Self.half("10.0.0.0/8"), responderSide: Self.half("2001:db8::/32")) == nil)
        #expect(Proxy(proto: .tcp, initiatorSide: Self.half("10.0.0.0/8"), responderSide: Self.half("10.1.0.0/16")) != nil)
    }

    // MARK: Proxy.isSubset: every part (M25, M26)

    @Test func aSubsetMustFitEveryPart() throws {
        let inner = try #require(Proxy(proto: .tcp, initiatorSide: Self.half("10.1.0.0/16", .single(1000)),
                                       responderSide: Self.half("10.2.0.0/16", .single(443))))
        let outer = try #require(Proxy(proto: .tcp, initiatorSide: Self.half("10.0.0.0/8"),
                                       responderSide: Self.half("10.2.0.0/16", PortRange(400, 500)!)))
        #expect(inner.isSubset(of: outer))
        #expect(!outer.isSubset(of: inner))
        let otherPort = try #require(Proxy(proto: .tcp, initiatorSide: inner.initiatorSide,
                                           responderSide: Self.half("10.2.0.0/16", .single(80))))
        #expect(!otherPort.isSubset(of: outer))
        let anyProto = try #require(Proxy(proto: .any, initiatorSide: inner.initiatorSide, responderSide: inner.responderSide))
        #expect(!anyProto.isSubset(of: outer))
        #expect(inner.isSubset(of: anyProto))
    }

    // MARK: Packet text (M29, M30)

    @Test func portsNeedAProtocolWithPorts() {
        #expect(throws: SyntaxError.self) { try Packet(parsing: "gre 10.0.0.1:5 10.0.0.2") }
        #expect(throws: SyntaxError.self) { try Packet(parsing: "gre 10.0.0.1 10.0.0.2:5") }
        #expect((try? Packet(parsing: "tcp 10.0.0.1:5 10.0.0.2")) != nil)
        // An IPv6 address without brackets has no port.
        #expect((try? Packet(parsing: "tcp 2001:db8::1 2001:db8::2")) != nil)
    }

    // MARK: AddressPattern (M05-M11)

    @Test func patternsAreFamilyBound() throws {
        let anyV4 = AddressPattern.any(.v4)
        #expect(!anyV4.contains(Self.address("::1")))
        #expect(anyV4.intersection(.any(.v6)) == nil)
        #expect(AddressPattern(address: Self.address("10.0.0.0"), mask: Self.address("ffff::")) == nil)
    }
}
