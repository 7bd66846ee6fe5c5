import Testing
import TEDTestSupport
@testable import TEDModel

/// The byte-wise IPv4 parser accepts exactly what the Character-wise one it replaced did.
@Suite struct IPv4ParsingTests {
    /// The previous parser, kept as the reference.
    static func reference(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt8(part) else { return nil }
            value = (value << 8) | UInt32(octet)
        }
        return value
    }

    @Test func agreesWithTheReferenceOnRandomText() {
        var rng = SeededRNG(seed: 4)
        let odd = Array(" a٣+-.")
        var accepted = 0
        for _ in 0..<20_000 {
            // Mostly dotted digit groups of 0-4 characters, 3-5 of them, with a stray character now and then.
            let parts = (0..<(3 + Int(rng.next() % 3))).map { _ in
                String((0..<Int(rng.next() % 5)).map { _ in
                    rng.next() % 16 == 0 ? odd[Int(rng.next() % UInt64(odd.count))] : Character(String(rng.next() % 10))
                })
            }
            let text = parts.joined(separator: ".")
            let expected = Self.reference(Substring(text))
            if expected != nil { accepted += 1 }
            #expect(IPAddress.parseV4(Substring(text)) == expected, "\(text)")
        }
        #expect(accepted > 100, "the random text reaches valid addresses")
    }

    @Test(arguments: ["0.0.0.0", "255.255.255.255", "1.2.3.4", "001.002.003.004", "10.0.0.255"])
    func accepts(_ text: String) {
        #expect(IPAddress.parseV4(Substring(text)) == Self.reference(Substring(text)))
        #expect(IPAddress.parseV4(Substring(text)) != nil)
    }

    @Test(arguments: ["256.0.0.0", "1.2.3.4.", ".1.2.3", "1.2.3", "1.2.3.4.5", "0001.2.3.4", "1.2.3.٣", "1.2.3.+4", ""])
    func rejects(_ text: String) {
        #expect(IPAddress.parseV4(Substring(text)) == nil)
    }
}
