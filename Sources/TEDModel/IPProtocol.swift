/// An IP protocol number in a selector; 0 means any protocol.
public struct IPProtocol: Hashable, Sendable, Comparable {
    public let number: UInt8

    public init(_ number: UInt8) { self.number = number }

    public static let any = IPProtocol(0)
    public static let icmp = IPProtocol(1)
    public static let tcp = IPProtocol(6)
    public static let udp = IPProtocol(17)
    public static let gre = IPProtocol(47)
    public static let esp = IPProtocol(50)
    public static let ah = IPProtocol(51)
    public static let icmpv6 = IPProtocol(58)
    public static let sctp = IPProtocol(132)
    public static let udplite = IPProtocol(136)

    public var isAny: Bool { number == 0 }

    /// Whether this protocol has 16-bit source and destination ports.
    public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp || self == .udplite }

    /// Whether the "ports" are ICMP type (source) and code (destination), as in XFRM selectors.
    public var isICMP: Bool { self == .icmp || self == .icmpv6 }

    /// Whether a selector of this protocol may restrict ports (or ICMP type/code).
    public var allowsPortSelectors: Bool { hasPorts || isICMP }

    /// The protocol a packet of `family` carries for this one: `icmp` is ICMPv6 (58) on
    /// IPv6, as an ACL means it. The one owner of that rule: traps, classifier, hold, guard,
    /// IKE selectors and the engine's matches all ask here.
    public func on(_ family: IPAddress.Family) -> IPProtocol {
        self == .icmp && family == .v6 ? .icmpv6 : self
    }

    /// Names accepted in policies and on the command line, first of each number is canonical.
    public static let names: [(String, UInt8)] = [
        ("ip", 0), ("ipv6", 0), ("any", 0), ("icmp", 1), ("igmp", 2), ("ipinip", 4), ("tcp", 6),
        ("udp", 17), ("gre", 47), ("esp", 50), ("ah", 51), ("ahp", 51), ("ipv6-icmp", 58),
        ("icmp6", 58), ("icmpv6", 58), ("eigrp", 88), ("ospf", 89), ("pim", 103), ("sctp", 132),
        ("udplite", 136),
    ]

    /// Parses a protocol name or a number 0-255.
    public init?(name: some StringProtocol) {
        let lower = name.lowercased()
        if let entry = Self.names.first(where: { $0.0 == lower }) {
            self.init(entry.1)
        } else if lower.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt8(lower) {
            self.init(number)
        } else {
            return nil
        }
    }

    public static func < (lhs: IPProtocol, rhs: IPProtocol) -> Bool { lhs.number < rhs.number }
}

extension IPProtocol: CustomStringConvertible {
    /// The canonical name (`ip` for any), or the number.
    public var description: String {
        Self.names.first(where: { $0.1 == number }).map(\.0) ?? String(number)
    }
}
