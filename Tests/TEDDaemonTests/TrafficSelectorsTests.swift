import Testing
import TEDModel
@testable import TEDDaemon
@testable import TEDVici

@Suite struct TrafficSelectorsTests {
    func proxy(_ i: String, _ r: String, packet: String) throws -> (Proxy, Packet) {
        let p = try Packet(parsing: packet)
        let a = try #require(try ACLParser.parseSelector(i).proxy(as: .initiator, family: p.family))
        let b = try #require(try ACLParser.parseSelector(r).proxy(as: .responder, family: p.family))
        return (try #require(a.intersection(b)), p)
    }

    @Test func narrowedToOnePort() throws {
        let (x, p) = try proxy("ip 198.18.1.0/24 198.18.0.0/16", "tcp 198.18.2.0/24 eq 443 198.18.0.0/16",
                               packet: "tcp 198.18.1.10:40000 198.18.2.20:443")
        let child = try #require(TrafficSelectors.initiatorChild(intersection: x, packet: p))
        #expect(child.local == "198.18.1.0/24[tcp]")
        #expect(child.remote == "198.18.2.0/24[tcp/443]")
    }

    @Test func portRangesAndAnyProtocol() throws {
        let (x, p) = try proxy("udp 198.18.1.0/24 range 1024 65535 198.18.2.0/24", "ip 198.18.2.0/24 198.18.1.0/24",
                               packet: "udp 198.18.1.10:5353 198.18.2.20:53")
        let child = try #require(TrafficSelectors.initiatorChild(intersection: x, packet: p))
        #expect(child.local == "198.18.1.0/24[udp/1024-65535]")
        #expect(child.remote == "198.18.2.0/24[udp]")
        let (y, q) = try proxy("ip 2001:db8:1::/48 2001:db8::/32", "ip 2001:db8:2::/48 2001:db8::/32",
                               packet: "tcp [2001:db8:1::10]:1 [2001:db8:2::20]:2")
        #expect(TrafficSelectors.initiatorChild(intersection: y, packet: q)?.remote == "2001:db8:2::/48")
    }

    /// A non-contiguous pattern becomes the largest prefix inside it holding the packet.
    @Test func nonContiguousMaskBecomesTheLargestPrefixHoldingP() throws {
        let pattern = try #require(AddressPattern("198.18.0.5/255.255.0.255"))
        let address = try #require(IPAddress("198.18.7.5"))
        #expect(TrafficSelector.largestPrefix(in: pattern, containing: address).description == "198.18.7.5/32")
        let wide = try #require(AddressPattern("198.18.0.0/255.255.1.0"))
        let inWide = try #require(IPAddress("198.18.6.77"))
        let prefix = TrafficSelector.largestPrefix(in: wide, containing: inWide)
        #expect(prefix.description == "198.18.6.0/24")
        #expect(wide.contains(prefix) && prefix.contains(inWide))
    }

    /// Brute force on one byte: the chosen prefix is inside the pattern, holds P, and no
    /// longer-by-one prefix holding P is also inside.
    @Test func prefixIsMaximalOnOneByte() {
        for maskLow in 0...255 {
            let pattern = AddressPattern(family: .v4, address: 0xC612_0100 | 0x5A, mask: 0xFFFF_FF00 | UInt128(maskLow))
            for low in 0...255 {
                let address = IPAddress(v4: 0xC612_0100 | UInt32(low))
                guard pattern.contains(address) else { continue }
                let prefix = TrafficSelector.largestPrefix(in: pattern, containing: address)
                #expect(pattern.contains(prefix) && prefix.contains(address))
                if let length = prefix.prefixLength, length > 24,
                   let bigger = AddressPattern(address: address, prefixLength: length - 1) {
                    #expect(!pattern.contains(bigger))
                }
            }
        }
    }
}

@Suite struct TrafficSelectorParsingTests {
    @Test(arguments: [
        ("198.18.2.0/24[tcp/https]", "198.18.2.0/24", 6, 443, 443),
        ("198.18.1.0/24[tcp]", "198.18.1.0/24", 6, 0, 65535),
        ("198.18.1.0/24", "198.18.1.0/24", 0, 0, 65535),
        ("198.18.1.0/24[udp/1024-65535]", "198.18.1.0/24", 17, 1024, 65535),
        ("2001:db8:2::/48[udp/domain]", "2001:db8:2::/48", 17, 53, 53),
        ("198.18.1.0/24[icmp]", "198.18.1.0/24", 1, 0, 65535),
    ])
    func parsesWhatStrongSwanPrints(text: String, pattern: String, proto: Int, low: Int, high: Int) throws {
        let parsed = try #require(TrafficSelectors.parse(text))
        #expect(parsed.pattern.description == pattern)
        #expect(Int(parsed.proto.number) == proto)
        #expect(Int(parsed.ports.lower) == low && Int(parsed.ports.upper) == high)
    }

    @Test(arguments: ["", "nonsense", "198.18.1.0/24[bogus/1]", "198.18.1.0/24[tcp/nosuchservice]", "198.18.1.0/24[tcp/9-1]"])
    func refusesWhatItCannotRead(text: String) {
        #expect(TrafficSelectors.parse(text) == nil)
    }

    /// A round trip: what ted proposes, it can read back.
    @Test func readsBackItsOwnSelectors() throws {
        for text in ["198.18.2.0/24[tcp/443]", "198.18.1.0/24[udp/1024-65535]", "2001:db8::/32"] {
            let parsed = try #require(TrafficSelectors.parse(text))
            #expect(TrafficSelectors.selector(parsed.pattern, proto: parsed.proto, ports: parsed.ports) == text)
        }
    }
}

/// strongSwan names ports it knows (`udp/mdns`): a selector printed so reads back to its number.
@Suite struct TrafficSelectorServiceNameTests {
    @Test func serviceNamesReadBackToPorts() throws {
        let parsed = try #require(TrafficSelectors.parse("198.18.2.0/24[udp/mdns]"))
        #expect(parsed.proto == .udp && parsed.ports == .single(5353))
        #expect(TrafficSelectors.parse("198.18.2.0/24[tcp/https]")?.ports == .single(443))
        #expect(TrafficSelectors.parse("198.18.2.0/24[udp/no-such-service]") == nil)
    }
}

/// A responder's child covers its policy entry exactly, a non-contiguous mask as the
/// prefixes it is the union of (IKEv2 children may list several selectors).
@Suite struct ResponderChildTests {
    @Test func aWildcardMaskBecomesItsPrefixes() throws {
        let entry = try #require(try ACLParser.parseLine("permit udp 198.18.2.20 0.0.0.32 198.18.1.0/24"))
        let child = try #require(TrafficSelectors.responderChild(entry: entry, family: .v4))
        #expect(child.local.sorted() == ["198.18.2.20/32[udp]", "198.18.2.52/32[udp]"])
        #expect(child.remote == ["198.18.1.0/24[udp]"])
    }

    @Test func aPrefixEntryIsOneSelectorAndTooManyHolesAreRefused() throws {
        let plain = try #require(try ACLParser.parseLine("permit tcp 198.18.2.0/24 eq 443 198.18.1.0/24"))
        #expect(TrafficSelectors.responderChild(entry: plain, family: .v4)?.local == ["198.18.2.0/24[tcp/443]"])
        // 0.0.0.254 leaves 7 holes: 128 prefixes, over the 64 a child may list.
        let sparse = try #require(try ACLParser.parseLine("permit ip 198.18.2.0 0.0.0.254 198.18.1.0/24"))
        #expect(TrafficSelectors.responderChild(entry: sparse, family: .v4) == nil)
        let six = try #require(try ACLParser.parseLine("permit ip 198.18.2.0 0.0.0.252 198.18.1.0/24"))
        #expect(TrafficSelectors.responderChild(entry: six, family: .v4)?.local.count == 64)
    }
}
