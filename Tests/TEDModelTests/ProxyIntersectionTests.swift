import Testing
import TEDTestSupport
@testable import TEDModel

@Suite struct ProxyIntersectionTests {
    /// Patent FIG. 3A as an accept/reject table (0 = any).
    @Test(arguments: [
        (0, 0, 0 as Int?), (0, 6, 6), (6, 0, 6), (6, 6, 6), (17, 17, 17), (6, 17, nil), (1, 58, nil), (0, 1, 1),
    ] as [(Int, Int, Int?)])
    func protocolTable(a: Int, b: Int, expected: Int?) {
        let result = Proxy.intersectProtocols(IPProtocol(UInt8(a)), IPProtocol(UInt8(b)))
        #expect(result.map { Int($0.number) } == expected)
    }

    /// Patent FIG. 3C generalised to ranges, as an accept/reject table.
    @Test(arguments: [
        (PortRange.all, PortRange.all, PortRange.all as PortRange?),
        (.all, .single(443), .single(443)), (.single(443), .all, .single(443)),
        (.single(443), .single(443), .single(443)), (.single(443), .single(80), nil),
        (PortRange(1024, 65535)!, PortRange(0, 1024)!, .single(1024)), (PortRange(1024, 65535)!, PortRange(0, 1023)!, nil),
        (PortRange(10, 20)!, PortRange(15, 30)!, PortRange(15, 20)!),
    ] as [(PortRange, PortRange, PortRange?)])
    func portTable(a: PortRange, b: PortRange, expected: PortRange?) {
        #expect(a.intersection(b) == expected)
    }

    /// Whole proxies on a reduced space: protocols {any, tcp, udp}, one address byte per side,
    /// ports 0-15: a point is in the intersection iff it is in both proxies.
    @Test func proxyIntersectionEqualsSetIntersection() {
        var rng = SeededRNG(seed: 42)
        for _ in 0..<300 {
            let a = randomProxy(&rng), b = randomProxy(&rng)
            let result = a.intersection(b)
            for _ in 0..<300 {
                let p = randomPacket(&rng)
                let inBoth = a.contains(p) && b.contains(p)
                #expect((result?.contains(p) ?? false) == inBoth, "\(a) ∩ \(b) = \(String(describing: result)) at \(p)")
            }
            if let result {
                #expect(result.isSubset(of: a) && result.isSubset(of: b))
            }
        }
    }

    @Test func ipv6AndFamilyMismatch() {
        let v6a = Proxy(proto: .udp, initiatorSide: HalfProxy(pattern: AddressPattern("2001:db8::/32")!),
                        responderSide: HalfProxy(pattern: AddressPattern("2001:db8:2::/48")!, ports: .single(53)))!
        let v6b = Proxy(proto: .any, initiatorSide: HalfProxy(pattern: AddressPattern("2001:db8:1::/48")!),
                        responderSide: HalfProxy(pattern: AddressPattern("2001:db8::/32")!))!
        let both = v6a.intersection(v6b)
        #expect(both?.description == "udp 2001:db8:1::/48 <-> 2001:db8:2::/48 port 53")
        let v4 = Proxy(proto: .any, initiatorSide: HalfProxy(pattern: .any(.v4)), responderSide: HalfProxy(pattern: .any(.v4)))!
        #expect(v4.intersection(v6a) == nil)
    }

    @Test func packetInsideChecksEveryField() {
        let proxy = Proxy(proto: .tcp, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!),
                          responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!, ports: .single(443)))!
        func p(_ text: String) -> Packet { try! Packet(parsing: text) }
        #expect(proxy.contains(p("tcp 198.18.1.10:40000 198.18.2.20:443")))
        #expect(!proxy.contains(p("udp 198.18.1.10:40000 198.18.2.20:443")))
        #expect(!proxy.contains(p("tcp 198.18.1.10:40000 198.18.2.20:80")))
        #expect(!proxy.contains(p("tcp 198.18.3.10:40000 198.18.2.20:443")))
        #expect(!proxy.contains(p("tcp 198.18.1.10:40000 198.18.3.20:443")))
        #expect(proxy.contains(p("tcp 198.18.1.10 198.18.2.20")), "absent ports are unknown and match")
    }

    private func randomProxy(_ rng: inout SeededRNG) -> Proxy {
        let protos: [IPProtocol] = [.any, .tcp, .udp]
        func side() -> HalfProxy {
            let mask = 0xFFFF_FF00 | UInt32(rng.next() & 0xff)
            let pattern = AddressPattern(address: IPAddress(v4: 0xC612_0100 | UInt32(rng.next() & 0xff)), mask: IPAddress(v4: mask))!
            let lo = UInt16(rng.next() % 16), hi = UInt16(rng.next() % 16)
            let ports = rng.next() % 3 == 0 ? PortRange.all : PortRange(min(lo, hi), max(lo, hi))!
            return HalfProxy(pattern: pattern, ports: ports)
        }
        return Proxy(proto: protos[Int(rng.next() % 3)], initiatorSide: side(), responderSide: side())!
    }

    private func randomPacket(_ rng: inout SeededRNG) -> Packet {
        let protos: [IPProtocol] = [.tcp, .udp, .icmp]
        return Packet(proto: protos[Int(rng.next() % 3)],
                      source: IPAddress(v4: 0xC612_0100 | UInt32(rng.next() & 0xff)),
                      destination: IPAddress(v4: 0xC612_0100 | UInt32(rng.next() & 0xff)),
                      sourcePort: UInt16(rng.next() % 16), destinationPort: UInt16(rng.next() % 16))!
    }
}

/// A range holds another exactly when both its ends do: the v2 verdict and proxy subsets
/// rest on it (a merge whose ports pass a policy's upper bound is not inside it).
@Suite struct PortRangeContainmentTests {
    @Test func aRangeHoldsAnotherOnlyWithBothEnds() {
        let policy = PortRange(1000, 2000)!
        for (lower, upper, inside) in [(1000, 2000, true), (1200, 1300, true), (999, 1500, false), (1500, 2001, false),
                                       (1000, 1000, true), (2000, 2000, true), (2001, 2001, false), (0, 65535, false)] {
            #expect(policy.contains(PortRange(UInt16(lower), UInt16(upper))!) == inside, "\(lower)-\(upper)")
        }
        // Brute force on a small space: containment is containment of every port.
        let small = (0...12).flatMap { a in (a...12).map { PortRange(UInt16(a), UInt16($0))! } }
        for outer in small {
            for inner in small {
                let every = (inner.lower...inner.upper).allSatisfy { outer.contains($0) }
                #expect(outer.contains(inner) == every, "\(outer) holds \(inner)")
            }
        }
    }
}
