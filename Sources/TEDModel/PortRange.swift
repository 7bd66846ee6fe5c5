/// An inclusive range of ports (or of ICMP types or codes), `lower <= upper`.
public struct PortRange: Hashable, Sendable {
    public let lower: UInt16
    public let upper: UInt16

    /// Creates a range; nil when `lower > upper`.
    public init?(_ lower: UInt16, _ upper: UInt16) {
        guard lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    private init(unchecked lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }

    /// 0-65535.
    public static let all = PortRange(unchecked: 0, .max)

    /// The range holding one port.
    public static func single(_ port: UInt16) -> PortRange { PortRange(unchecked: port, port) }

    public var isAll: Bool { self == .all }
    /// How many ports the range holds (1...65536).
    public var count: Int { Int(upper) - Int(lower) + 1 }
    public var isSingle: Bool { lower == upper }

    @inlinable
    public func contains(_ port: UInt16) -> Bool { lower <= port && port <= upper }

    public func contains(_ other: PortRange) -> Bool { lower <= other.lower && other.upper <= upper }

    /// The overlap of two ranges (patent FIG. 3C generalised), or nil when disjoint.
    public func intersection(_ other: PortRange) -> PortRange? {
        PortRange(max(lower, other.lower), min(upper, other.upper))
    }
}

extension PortRange: CustomStringConvertible {
    /// `443`, `1024-65535`, or `any`.
    public var description: String {
        if isAll { return "any" }
        return isSingle ? "\(lower)" : "\(lower)-\(upper)"
    }
}
