/// An IPv4 or IPv6 address.
///
/// Both families are held in one `UInt128` (IPv4 in the low 32 bits) so that
/// masks and intersections are plain bit operations.
public struct IPAddress: Hashable, Sendable, Comparable {
    public enum Family: UInt8, Hashable, Sendable, CustomStringConvertible {
        case v4 = 4
        case v6 = 6

        /// Number of address bits.
        public var bitWidth: Int { self == .v4 ? 32 : 128 }
        /// Number of address bytes on the wire.
        public var byteCount: Int { self == .v4 ? 4 : 16 }
        /// All address bits set.
        public var allOnes: UInt128 { self == .v4 ? UInt128(UInt32.max) : UInt128.max }
        public var description: String { self == .v4 ? "IPv4" : "IPv6" }
    }

    public let family: Family
    /// The address bits; for IPv4 only the low 32 bits are used.
    public let bits: UInt128

    public init(family: Family, bits: UInt128) {
        self.family = family
        self.bits = bits & family.allOnes
    }

    public init(v4: UInt32) { self.init(family: .v4, bits: UInt128(v4)) }
    public init(v6: UInt128) { self.init(family: .v6, bits: v6) }

    /// The unspecified address of a family (0.0.0.0 or ::).
    public static func zero(_ family: Family) -> IPAddress { IPAddress(family: family, bits: 0) }

    /// Builds an address from its network-order bytes (4 or 16), else nil.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        let family: Family
        switch bytes.count {
        case 4: family = .v4
        case 16: family = .v6
        default: return nil
        }
        var value: UInt128 = 0
        for byte in bytes { value = (value << 8) | UInt128(byte) }
        self.init(family: family, bits: value)
    }

    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8] {
        let count = family.byteCount
        return (0..<count).map { UInt8(truncatingIfNeeded: bits >> (8 * (count - 1 - $0))) }
    }

    /// The IPv4 value, when this is IPv4.
    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool { family == .v4 ? bits >> 24 == 127 : bits == 1 }

    public var v4: UInt32? { family == .v4 ? UInt32(truncatingIfNeeded: bits) : nil }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.family.rawValue, lhs.bits) < (rhs.family.rawValue, rhs.bits)
    }
}

extension IPAddress: CustomStringConvertible {
    public var description: String {
        switch family {
        case .v4:
            return bytes.map(String.init).joined(separator: ".")
        case .v6:
            return Self.formatV6(bits)
        }
    }

    /// RFC 5952 text: lower case, the longest run (2 or more) of zero groups as `::`.
    private static func formatV6(_ bits: UInt128) -> String {
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits >> (16 * (7 - $0))) }
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                let length = index - runStart
                if length > bestLength && length >= 2 { bestStart = runStart; bestLength = length }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

extension IPAddress {
    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        if text.utf8.contains(UInt8(ascii: ":")) {
            guard let bits = Self.parseV6(Substring(text)) else { return nil }
            self.init(v6: bits)
        } else {
            guard let value = Self.parseV4(Substring(text)) else { return nil }
            self.init(v4: value)
        }
    }

    /// Four dot-separated decimal octets of 1-3 ASCII digits each, read byte by byte
    /// (a 100,000-entry policy parses this a few hundred thousand times at start-up).
    static func parseV4(_ text: Substring) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = (value << 8) | octet
                (octet, digits, dots) = (0, 0, dots + 1)
            } else {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3 else { return nil }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                guard octet <= 255 else { return nil }
                digits += 1
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        return (value << 8) | octet
    }

    static func parseV6(_ text: Substring) -> UInt128? {
        guard text.count <= 45 else { return nil }
        let halves = text.split(separator: "::", maxSplits: 2, omittingEmptySubsequences: false)
            .map { String($0) }
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if index == fields.count - 1, field.contains(".") {
                    guard let v4 = parseV4(field) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xffff))
                } else {
                    guard (1...4).contains(field.count), field.allSatisfy(\.isHexDigit),
                          let group = UInt16(field, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all: [UInt16]
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            all = head
        }
        return all.reduce(UInt128(0)) { ($0 << 16) | UInt128($1) }
    }
}
