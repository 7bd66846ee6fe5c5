import Testing
import TEDTestSupport
@testable import TEDModel

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("198.51.100.1", "198.51.100.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
        ("2001:db8::1", "2001:db8::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("::", "::"), ("::1", "::1"),
        ("2001:db8:0:1:0:0:0:0", "2001:db8:0:1::"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"), ("2001:0:0:1:1:0:0:1", "2001::1:1:0:0:1"),
        ("2001:db8:1:1:1:1:1:1", "2001:db8:1:1:1:1:1:1"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::ffff:198.51.100.1", "::ffff:c633:6401"),
    ])
    func parsesAndFormats(input: String, expected: String) {
        #expect(IPAddress(input)?.description == expected)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "01234.1.1.1", "1..2.3", "a.b.c.d",
                      ":::", "1::2::3", "2001:db8::12345", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1",
                      "2001:db8::1%eth0", "1:2:3:4:5:6:7::8:9"])
    func rejects(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func bytesRoundTrip() {
        let v6 = IPAddress("2001:db8:ffff::2")!
        #expect(v6.bytes.count == 16)
        #expect(IPAddress(bytes: v6.bytes) == v6)
        let v4 = IPAddress("198.18.2.20")!
        #expect(v4.bytes == [198, 18, 2, 20])
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }
}

@Suite struct AddressPatternTests {
    @Test func parsesPrefixAndMaskForms() {
        #expect(AddressPattern("198.18.2.7/24")?.description == "198.18.2.0/24")
        #expect(AddressPattern("198.18.0.5/255.255.0.255")?.description == "198.18.0.5/255.255.0.255")
        #expect(AddressPattern("2001:db8:1::/48")?.prefixLength == 48)
        #expect(AddressPattern("198.18.0.0/33") == nil)
        #expect(AddressPattern("198.18.0.0/ffff::") == nil)
        #expect(AddressPattern("198.18.0.1")?.prefixLength == 32)
    }

    @Test func patentWorkedExample() {
        let a = AddressPattern("10.11.0.0/255.255.0.0")!
        let c = AddressPattern("10.0.0.0/255.0.0.0")!
        let result = a.intersection(c)
        #expect(result?.address.description == "10.11.0.0")
        #expect(result?.mask.description == "255.255.0.0")
    }

    /// All 256 values of the last byte: the intersection is exactly the set intersection.
    @Test func intersectionEqualsSetIntersectionOnOneByte() {
        var rng = SeededRNG(seed: 7)
        let base: UInt32 = 0xC612_0100  // 198.18.1.0
        for _ in 0..<4000 {
            let a = pattern(base: base, rng: &rng), b = pattern(base: base, rng: &rng)
            let expected = Set((0...255).filter { a.contains(addr(base, $0)) && b.contains(addr(base, $0)) })
            let result = a.intersection(b)
            let got = Set((0...255).filter { result?.contains(addr(base, $0)) ?? false })
            #expect(got == expected, "\(a) ∩ \(b) gave \(String(describing: result))")
            #expect(result == nil || !expected.isEmpty)
            if let result {
                #expect(a.contains(result) && b.contains(result))
            }
        }
    }

    @Test func containsPatternMatchesBruteForce() {
        var rng = SeededRNG(seed: 11)
        let base: UInt32 = 0xC612_0200
        for _ in 0..<2000 {
            let a = pattern(base: base, rng: &rng), b = pattern(base: base, rng: &rng)
            let subset = (0...255).allSatisfy { !b.contains(addr(base, $0)) || a.contains(addr(base, $0)) }
            #expect(a.contains(b) == subset, "\(a) ⊇ \(b)")
        }
    }

    @Test func differentFamiliesDoNotIntersect() {
        #expect(AddressPattern("198.18.0.0/16")!.intersection(AddressPattern("2001:db8::/32")!) == nil)
        #expect(!AddressPattern.any(.v4).contains(IPAddress("2001:db8::1")!))
    }

    private func addr(_ base: UInt32, _ low: Int) -> IPAddress { IPAddress(v4: base | UInt32(low)) }

    /// A pattern on the last byte: the upper 24 bits compared, random (often non-contiguous) low mask.
    private func pattern(base: UInt32, rng: inout SeededRNG) -> AddressPattern {
        let low = UInt32(rng.next() & 0xff), mask = 0xFFFF_FF00 | UInt32(rng.next() & 0xff)
        return AddressPattern(address: IPAddress(v4: base | low), mask: IPAddress(v4: mask))!
    }
}
