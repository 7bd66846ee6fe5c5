import Testing
import TEDTestSupport
import TEDModel

/// Packet summaries read from raw IP headers (what the netfilter queue copies to ted).
@Suite struct PacketHeaderTests {
    /// An IPv4 header (20 bytes, or more with options) and its transport's first bytes.
    func ipv4(proto: UInt8, transport: [UInt8], fragment: UInt16 = 0, options: Int = 0) -> [UInt8] {
        let ihl = UInt8(5 + options / 4)
        return [0x40 | ihl, 0, 0, 60, 0x12, 0x34, UInt8(fragment >> 8), UInt8(fragment & 0xff), 64, proto, 0, 0,
                198, 18, 1, 10, 198, 18, 2, 20] + [UInt8](repeating: 1, count: options) + transport
    }

    func ipv6(next: UInt8, rest: [UInt8]) -> [UInt8] {
        let address: (UInt8) -> [UInt8] = { [0x20, 0x01, 0x0d, 0xb8, 0, $0] + [UInt8](repeating: 0, count: 9) + [0x10] }
        return [0x60, 0, 0, 0, 0, 40, next, 64] + address(1) + address(2) + rest
    }

    @Test func readsTCPPortsAfterIPv4Options() throws {
        let packet = try #require(Packet(ipHeader: ipv4(proto: 6, transport: [0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 0], options: 8)))
        #expect(packet == Packet(proto: .tcp, source: IPAddress("198.18.1.10")!, destination: IPAddress("198.18.2.20")!,
                                 sourcePort: 40000, destinationPort: 443))
    }

    @Test func icmpTypeAndCodeAreThePorts() throws {
        let packet = try #require(Packet(ipHeader: ipv4(proto: 1, transport: [8, 0, 0xf7, 0xff])))
        #expect(packet.description == "icmp 198.18.1.10:8 198.18.2.20:0")
    }

    @Test func aLaterFragmentOrACutTransportHeaderHasNoPorts() throws {
        let later = try #require(Packet(ipHeader: ipv4(proto: 17, transport: [0, 53, 0, 53], fragment: 0x0010)))
        #expect(later.sourcePort == nil && later.destinationPort == nil)
        let firstWithMoreFragments = try #require(Packet(ipHeader: ipv4(proto: 17, transport: [0, 53, 0, 54], fragment: 0x2000)))
        #expect(firstWithMoreFragments.destinationPort == 54)
        let cut = try #require(Packet(ipHeader: ipv4(proto: 17, transport: [0, 53, 0])))
        #expect(cut.sourcePort == nil && cut.proto == .udp)
    }

    @Test func ipv6SkipsExtensionHeaders() throws {
        // Hop-by-hop (8 bytes), then a first fragment, then UDP.
        let rest: [UInt8] = [44, 0, 0, 0, 0, 0, 0, 0] + [17, 0, 0, 0, 0, 0, 0, 1] + [0x14, 0xe9, 0x00, 0x35]
        let packet = try #require(Packet(ipHeader: ipv6(next: 0, rest: rest)))
        #expect(packet.description == "udp [2001:db8:1::10]:5353 [2001:db8:2::10]:53")
        // Destination options of 16 bytes (length field 1), then TCP.
        let options: [UInt8] = [6, 1] + [UInt8](repeating: 0, count: 14) + [0x9c, 0x40, 0x01, 0xbb]
        #expect(try #require(Packet(ipHeader: ipv6(next: 60, rest: options))).description
                == "tcp [2001:db8:1::10]:40000 [2001:db8:2::10]:443")
        let laterFragment: [UInt8] = [17, 0, 0, 8, 0, 0, 0, 1] + [0x14, 0xe9, 0x00, 0x35]
        #expect(try #require(Packet(ipHeader: ipv6(next: 44, rest: laterFragment))).destinationPort == nil)
    }

    @Test func refusesWhatIsNoIPHeader() {
        #expect(Packet(ipHeader: []) == nil)
        #expect(Packet(ipHeader: ipv4(proto: 6, transport: []).prefix(19)) == nil)
        #expect(Packet(ipHeader: [0x45] + [UInt8](repeating: 0, count: 30)) == nil, "protocol 0")
        #expect(Packet(ipHeader: [0x44] + [UInt8](repeating: 0, count: 30)) == nil, "header length 16")
        #expect(Packet(ipHeader: [0x50] + [UInt8](repeating: 0, count: 60)) == nil, "version 5")
        #expect(Packet(ipHeader: ipv6(next: 0, rest: [17])) == nil, "cut inside an extension header")
        #expect(Packet(ipHeader: ipv6(next: 6, rest: []).prefix(39)) == nil)
    }

    @Test func neverTrapsOnAnyPrefixOfAnyHeader() {
        var rng = SeededRNG(seed: 7)
        for _ in 0..<2_000 {
            let length = Int(rng.next() % 80)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !bytes.isEmpty { bytes[0] = rng.next() % 2 == 0 ? 0x45 : 0x60 }
            _ = Packet(ipHeader: bytes)
        }
    }
}
