import TEDModel

/// strongSwan traffic selectors (`cidr[proto/port]`) for a TED intersection.
///
/// IKEv2 selectors are address ranges, so a non-contiguous mask cannot be proposed as
/// such. The rule: use the largest prefix that lies inside the pattern and holds the
/// packet's address — its length is the position of the mask's last 1 bit, so every
/// bit after it is free in the pattern. Every contiguous run of a non-contiguous pattern
/// is such a block, so no single range could be larger. The result is always a subset
/// of the intersection (and so of both policies) that still contains P.
public enum TrafficSelectors {
    /// The largest prefix inside `pattern` containing `address` (which must match it).
    public static func prefix(in pattern: AddressPattern, containing address: IPAddress) -> AddressPattern {
        if pattern.prefixLength != nil { return pattern }
        let width = pattern.family.bitWidth
        let length = width - pattern.mask.bits.trailingZeroBitCount
        return AddressPattern(address: address, prefixLength: length) ?? .host(address)
    }

    /// One selector: `198.18.2.0/24[tcp/443]`, `198.18.1.0/24[tcp/1024-65535]`, `198.18.1.0/24`.
    public static func selector(_ pattern: AddressPattern, proto: IPProtocol, ports: PortRange) -> String {
        guard let length = pattern.prefixLength else { return "\(pattern.address)/\(pattern.family.bitWidth)" }
        let cidr = "\(pattern.address)/\(length)"
        if proto.isAny { return cidr }
        let name = proto.hasPorts || proto.isICMP ? proto.description : String(proto.number)
        if ports.isAll || !proto.allowsPortSelectors { return "\(cidr)[\(name)]" }
        return "\(cidr)[\(name)/\(ports)]"
    }

    /// The child's local and remote selectors for the initiator of a discovery.
    public static func initiatorChild(intersection: Proxy, packet: Packet) -> (local: String, remote: String) {
        let local = prefix(in: intersection.initiatorSide.pattern, containing: packet.source)
        let remote = prefix(in: intersection.responderSide.pattern, containing: packet.destination)
        if intersection.proto.isICMP {
            // XFRM and IKE carry ICMP type and code in the port fields of one selector.
            return (selector(local, proto: intersection.proto, ports: .all),
                    selector(remote, proto: intersection.proto, ports: .all))
        }
        return (selector(local, proto: intersection.proto, ports: intersection.initiatorSide.ports),
                selector(remote, proto: intersection.proto, ports: intersection.responderSide.ports))
    }

    /// Parses a selector as strongSwan prints it (`198.18.2.0/24[tcp/https]`, `198.18.1.0/24`,
    /// `198.18.1.0/24[udp/1024-65535]`): pattern, protocol, ports; nil when not understood.
    public static func parse(_ text: String) -> (pattern: AddressPattern, proto: IPProtocol, ports: PortRange)? {
        let parts = text.split(separator: "[", maxSplits: 1)
        guard let first = parts.first, let pattern = AddressPattern(first) else { return nil }
        guard parts.count == 2 else { return (pattern, .any, .all) }
        let inner = parts[1].dropLast(parts[1].hasSuffix("]") ? 1 : 0).split(separator: "/", maxSplits: 1)
        guard let protoText = inner.first, let proto = IPProtocol(name: protoText) else { return nil }
        guard inner.count == 2, inner[1] != "%any" else { return (pattern, proto, .all) }
        let bounds = inner[1].split(separator: "-", maxSplits: 1).map(String.init)
        guard let low = bounds.first.flatMap(ACLParser.portNumber),
              let range = PortRange(low, bounds.count == 2 ? (ACLParser.portNumber(bounds[1]) ?? 0) : low) else { return nil }
        return (pattern, proto, range)
    }

    /// The local and remote selectors of a responder's policy entry (its `%any` connection).
    public static func responderChild(entry: PolicyEntry, family: IPAddress.Family) -> (local: String, remote: String)? {
        guard let local = entry.local.pattern(for: family), let remote = entry.remote.pattern(for: family),
              local.prefixLength != nil, remote.prefixLength != nil else { return nil }
        if entry.proto.isICMP {
            return (selector(local, proto: entry.proto, ports: .all), selector(remote, proto: entry.proto, ports: .all))
        }
        return (selector(local, proto: entry.proto, ports: entry.localPorts),
                selector(remote, proto: entry.proto, ports: entry.remotePorts))
    }
}
