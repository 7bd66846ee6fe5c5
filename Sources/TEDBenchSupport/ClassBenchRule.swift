import TEDModel

/// ClassBench acl1 rules (Benchmarks/classbench) turned into ted policies and packets.
///
/// A rule `@src/len dst/len sportlo : sporthi dportlo : dporthi proto/mask flags` describes
/// packets from src to dst. As the responder's policy line the destination is the local
/// side: `permit <proto> <dst> [ports] <src> [ports]`.
public struct ClassBenchRule: Hashable, Sendable {
    public let source: AddressPattern
    public let destination: AddressPattern
    public let sourcePorts: PortRange
    public let destinationPorts: PortRange
    public let proto: IPProtocol

    /// Parses one `@...` line; nil when it is not one.
    public init?(line: Substring) {
        let fields = line.dropFirst().split(whereSeparator: { $0 == "\t" }).map { $0.filter { $0 != " " } }
        guard fields.count >= 5, let source = AddressPattern(fields[0]), let destination = AddressPattern(fields[1]),
              let sourcePorts = Self.range(fields[2]), let destinationPorts = Self.range(fields[3]) else { return nil }
        let protoParts = fields[4].split(separator: "/")
        guard protoParts.count == 2, let number = UInt8(protoParts[0].dropFirst(2), radix: 16),
              let mask = UInt8(protoParts[1].dropFirst(2), radix: 16) else { return nil }
        self.source = source
        self.destination = destination
        self.proto = mask == 0 ? .any : IPProtocol(number)
        // Port selectors only mean something for protocols with ports.
        self.sourcePorts = self.proto.hasPorts ? sourcePorts : .all
        self.destinationPorts = self.proto.hasPorts ? destinationPorts : .all
    }

    private static func range(_ text: String) -> PortRange? {
        let parts = text.split(separator: ":").map { $0.filter { $0 != " " } }
        guard parts.count == 2, let low = UInt16(parts[0]), let high = UInt16(parts[1]) else { return nil }
        return PortRange(low, high)
    }

    /// The rule as the responder's ACL line.
    public var responderLine: String {
        func ports(_ range: PortRange) -> String {
            if range.isAll { return "" }
            return range.isSingle ? " eq \(range.lower)" : " range \(range.lower) \(range.upper)"
        }
        return "permit \(proto) \(destination)\(ports(destinationPorts)) \(source)\(ports(sourcePorts))"
    }

    /// A packet inside the rule: random host bits, random ports inside each range.
    public func packet(using rng: inout some RandomNumberGenerator) -> Packet? {
        func host(_ p: AddressPattern) -> IPAddress {
            IPAddress(family: p.family, bits: p.address.bits | (UInt128(rng.next() as UInt64) & ~p.mask.bits))
        }
        let proto = self.proto.isAny ? IPProtocol.udp : self.proto
        return Packet(proto: proto, source: host(source), destination: host(destination),
                      sourcePort: proto.hasPorts ? UInt16.random(in: sourcePorts.lower...sourcePorts.upper, using: &rng) : nil,
                      destinationPort: proto.hasPorts ? UInt16.random(in: destinationPorts.lower...destinationPorts.upper, using: &rng) : nil)
    }

    /// The rules of a ClassBench file's text, at most `limit`.
    public static func parse(_ text: String, limit: Int = .max) -> [ClassBenchRule] {
        var rules: [ClassBenchRule] = []
        for line in text.split(separator: "\n") where line.hasPrefix("@") {
            if let rule = ClassBenchRule(line: line) { rules.append(rule) }
            if rules.count == limit { break }
        }
        return rules
    }
}
