/// An address with a mask in which a 1 bit is compared and a 0 bit is ignored.
///
/// The mask may be non-contiguous (e.g. 255.255.0.255), as in the patent and in
/// Cisco wildcard masks. The stored address is always already masked.
public struct AddressPattern: Hashable, Sendable {
    public let address: IPAddress
    public let mask: IPAddress

    /// Creates a pattern; returns nil when address and mask are of different families.
    public init?(address: IPAddress, mask: IPAddress) {
        guard address.family == mask.family else { return nil }
        self.init(family: address.family, address: address.bits, mask: mask.bits)
    }

    /// A pattern from raw bits of one family; the address is masked here.
    public init(family: IPAddress.Family, address: UInt128, mask: UInt128) {
        self.address = IPAddress(family: family, bits: address & mask)
        self.mask = IPAddress(family: family, bits: mask)
    }

    /// A prefix pattern `address/length`; nil when length is out of range.
    public init?(address: IPAddress, prefixLength: Int) {
        guard let mask = Self.mask(family: address.family, prefixLength: prefixLength) else { return nil }
        self.init(family: address.family, address: address.bits, mask: mask.bits)
    }

    /// The pattern matching one address.
    public static func host(_ address: IPAddress) -> AddressPattern {
        AddressPattern(family: address.family, address: address.bits, mask: address.family.allOnes)
    }

    /// The pattern matching every address of a family.
    public static func any(_ family: IPAddress.Family) -> AddressPattern {
        AddressPattern(family: family, address: 0, mask: 0)
    }

    /// The contiguous mask of a prefix length, or nil when out of range.
    public static func mask(family: IPAddress.Family, prefixLength: Int) -> IPAddress? {
        guard (0...family.bitWidth).contains(prefixLength) else { return nil }
        let ones = prefixLength == 0 ? 0 : family.allOnes << (family.bitWidth - prefixLength)
        return IPAddress(family: family, bits: ones)
    }

    public var family: IPAddress.Family { address.family }

    /// Whether `candidate` matches: same family and equal on every compared bit.
    @inlinable
    public func contains(_ candidate: IPAddress) -> Bool {
        candidate.family == address.family && (candidate.bits & mask.bits) == address.bits
    }

    /// Whether every address matched by `other` is matched by this pattern.
    public func contains(_ other: AddressPattern) -> Bool {
        other.family == family
            && (mask.bits & ~other.mask.bits) == 0
            && (other.address.bits & mask.bits) == address.bits
    }

    /// The prefix length when the mask is contiguous, else nil.
    public var prefixLength: Int? {
        let ones = mask.bits.nonzeroBitCount
        return Self.mask(family: family, prefixLength: ones) == mask ? ones : nil
    }

    /// Number of ignored (0) mask bits: the pattern matches 2^this addresses.
    public var freeBitCount: Int { family.bitWidth - mask.bits.nonzeroBitCount }

    /// The largest common subset of two patterns (patent FIG. 3B), or nil when disjoint.
    ///
    /// With this pattern (A, B) and `other` (C, D): when A&B&D == C&B&D the result is
    /// ((A&B)|(C&D), B|D), else the patterns share no address.
    public func intersection(_ other: AddressPattern) -> AddressPattern? {
        guard family == other.family else { return nil }
        let (a, b, c, d) = (address.bits, mask.bits, other.address.bits, other.mask.bits)
        guard a & b & d == c & b & d else { return nil }
        return AddressPattern(family: family, address: (a & b) | (c & d), mask: b | d)
    }
}

extension AddressPattern: CustomStringConvertible {
    /// `A/len` for a contiguous mask, else `A/MASK`.
    public var description: String {
        if let length = prefixLength { return "\(address)/\(length)" }
        return "\(address)/\(mask)"
    }
}

extension AddressPattern {
    /// Parses `A`, `A/len` or `A/MASK` (a mask of 1 = compared bits, may be non-contiguous).
    public init?(_ text: some StringProtocol) {
        guard let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) else {
            guard let address = IPAddress(text) else { return nil }
            self = .host(address)
            return
        }
        let suffix = text[text.index(after: slash)...]
        guard let address = IPAddress(text[..<slash]) else { return nil }
        if let length = Int(suffix), suffix.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            self.init(address: address, prefixLength: length)
        } else if let mask = IPAddress(suffix) {
            self.init(address: address, mask: mask)
        } else {
            return nil
        }
    }
}

extension AddressPattern {
    /// The free bits before the mask's last 1 bit: a contiguous mask has none.
    private var holes: [Int] {
        let width = family.bitWidth
        let length = width - mask.bits.trailingZeroBitCount
        let fullPrefix = family.allOnes << (width - length) & family.allOnes
        return (0..<width).filter { bit in
            let value = UInt128(1) << bit
            return value & fullPrefix != 0 && value & mask.bits == 0
        }
    }

    /// How many prefixes the pattern is the union of: 2^k for k holes in its mask
    /// (saturated at 2^62).
    public var prefixCount: Int { 1 << min(holes.count, 62) }

    /// The prefixes whose union is exactly the pattern (what XFRM selectors and IKE traffic
    /// selectors can hold): every combination of the mask's holes; nil when there would be
    /// more than `limit`.
    public func prefixes(limit: Int) -> [AddressPattern]? {
        if prefixLength != nil { return [self] }
        let holes = self.holes
        guard holes.count < 62, 1 << holes.count <= limit else { return nil }
        let length = family.bitWidth - mask.bits.trailingZeroBitCount
        return (0..<(1 << holes.count)).compactMap { combination in
            var bits = address.bits
            for (index, bit) in holes.enumerated() where combination >> index & 1 == 1 { bits |= UInt128(1) << bit }
            return AddressPattern(address: IPAddress(family: family, bits: bits), prefixLength: length)
        }
    }
}

