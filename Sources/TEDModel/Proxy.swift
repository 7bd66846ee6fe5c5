/// One half of a proxy: the addresses and ports on one side of a tunnel.
public struct HalfProxy: Hashable, Sendable {
    public let pattern: AddressPattern
    /// Ports on this side; for ICMP the initiator side carries the type, the responder side the code.
    public let ports: PortRange

    public init(pattern: AddressPattern, ports: PortRange = .all) {
        self.pattern = pattern
        self.ports = ports
    }
}

/// A full proxy: what a tunnel protects, written in the TED initiator's view.
///
/// The initiator side holds the source end host of packet P (W, or Z for the
/// responder); the responder side holds its destination (X, or Y for the responder).
public struct Proxy: Hashable, Sendable {
    public let proto: IPProtocol
    public let initiatorSide: HalfProxy
    public let responderSide: HalfProxy

    /// Creates a proxy; nil when the two sides are of different IP versions.
    public init?(proto: IPProtocol, initiatorSide: HalfProxy, responderSide: HalfProxy) {
        guard initiatorSide.pattern.family == responderSide.pattern.family else { return nil }
        self.proto = proto
        self.initiatorSide = initiatorSide
        self.responderSide = responderSide
    }

    public var family: IPAddress.Family { initiatorSide.pattern.family }

    /// The largest common subset of two proxies (patent FIG. 3A-3C, spec section 5),
    /// or nil when it is empty.
    public func intersection(_ other: Proxy) -> Proxy? {
        guard family == other.family,
              let proto = Self.intersectProtocols(proto.on(family), other.proto.on(family)),
              let initiatorPattern = initiatorSide.pattern.intersection(other.initiatorSide.pattern),
              let responderPattern = responderSide.pattern.intersection(other.responderSide.pattern),
              let initiatorPorts = initiatorSide.ports.intersection(other.initiatorSide.ports),
              let responderPorts = responderSide.ports.intersection(other.responderSide.ports)
        else { return nil }
        return Proxy(proto: proto,
                     initiatorSide: HalfProxy(pattern: initiatorPattern, ports: initiatorPorts),
                     responderSide: HalfProxy(pattern: responderPattern, ports: responderPorts))
    }

    /// FIG. 3A: any with any is any, any with a protocol is that protocol, equal protocols stay.
    static func intersectProtocols(_ a: IPProtocol, _ b: IPProtocol) -> IPProtocol? {
        if a.isAny { return b }
        if b.isAny || a == b { return a }
        return nil
    }

    /// Whether packet P, sent from the initiator side to the responder side, lies inside (block 218).
    public func contains(_ packet: Packet) -> Bool {
        (proto.isAny || proto.on(family) == packet.proto.on(family))
            && initiatorSide.pattern.contains(packet.source)
            && responderSide.pattern.contains(packet.destination)
            && packet.sourcePort.map(initiatorSide.ports.contains) ?? true
            && packet.destinationPort.map(responderSide.ports.contains) ?? true
    }

    /// Whether every packet this proxy matches is also matched by `other`.
    public func isSubset(of other: Proxy) -> Bool {
        (other.proto.isAny || other.proto.on(family) == proto.on(family))
            && other.initiatorSide.pattern.contains(initiatorSide.pattern)
            && other.responderSide.pattern.contains(responderSide.pattern)
            && other.initiatorSide.ports.contains(initiatorSide.ports)
            && other.responderSide.ports.contains(responderSide.ports)
    }
}

extension Proxy: CustomStringConvertible {
    /// `tcp 198.18.1.0/24 port any <-> 198.18.2.0/24 port 443`.
    public var description: String {
        func side(_ half: HalfProxy) -> String {
            half.ports.isAll ? "\(half.pattern)" : "\(half.pattern) port \(half.ports)"
        }
        return "\(proto) \(side(initiatorSide)) <-> \(side(responderSide))"
    }
}
