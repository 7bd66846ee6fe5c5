import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// strongSwan's text for traffic selectors (`cidr[proto/port]`), at the VICI edge; what
/// the selectors are is the model's (`TrafficSelector`).
public enum TrafficSelectors {
    /// One selector: `198.18.2.0/24[tcp/443]`, `198.18.1.0/24[tcp/1024-65535]`, `198.18.1.0/24`.
    public static func selector(_ pattern: AddressPattern, proto: IPProtocol, ports: PortRange) -> String {
        guard let length = pattern.prefixLength else { return "\(pattern.address)/\(pattern.family.bitWidth)" }
        let cidr = "\(pattern.address)/\(length)"
        if proto.isAny { return cidr }
        let name = proto.hasPorts || proto.isICMP ? proto.description : String(proto.number)
        if ports.isAll || !proto.allowsPortSelectors { return "\(cidr)[\(name)]" }
        return "\(cidr)[\(name)/\(ports)]"
    }

    /// The child's local and remote selectors for the initiator of a discovery: the
    /// model's proposal (`TrafficSelector.proposal`) without what `earlier` entries own.
    public static func initiatorChild(intersection: Proxy, packet: Packet,
                                      excluding earlier: [PolicyEntry] = []) -> (local: String, remote: String)? {
        guard let box = TrafficSelector.proposal(intersection: intersection, packet: packet, excluding: earlier) else { return nil }
        return strongSwan(box)
    }

    /// A traffic selector as strongSwan's `local_ts` and `remote_ts`.
    public static func strongSwan(_ box: TrafficSelector) -> (local: String, remote: String) {
        (selector(box.local, proto: box.proto, ports: box.localPorts), selector(box.remote, proto: box.proto, ports: box.remotePorts))
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
        // strongSwan prints a port by its service name when the system knows one (mdns).
        func port(_ text: String) -> UInt16? {
            ACLParser.portNumber(text) ?? getservbyname(text, proto.description).map { UInt16(bigEndian: UInt16(truncatingIfNeeded: $0.pointee.s_port)) }
        }
        guard let low = bounds.first.flatMap(port),
              let range = PortRange(low, bounds.count == 2 ? (port(bounds[1]) ?? 0) : low) else { return nil }
        return (pattern, proto, range)
    }

    /// A child SA's selectors as the IKE daemon reports them (each local with each remote
    /// of its IP version) in the model's type; a selector not understood is left out.
    public static func selectors(local: [String], remote: [String]) -> [TrafficSelector] {
        let locals = local.compactMap(parse), remotes = remote.compactMap(parse)
        var result: [TrafficSelector] = []
        for l in locals {
            for r in remotes where l.pattern.family == r.pattern.family {
                let proto = l.proto.isAny ? r.proto : l.proto
                result.append(TrafficSelector(proto: proto, local: l.pattern, localPorts: l.ports,
                                              remote: r.pattern, remotePorts: r.ports))
            }
        }
        return result
    }

    /// Most traffic selectors one side of a responder's child may list.
    public static let maxResponderSelectors = 64

    /// The local and remote selectors of a responder's policy entry (its `%any`
    /// connection): a non-contiguous mask becomes the prefixes it is the union of, so the
    /// child covers the entry exactly; nil beyond `maxResponderSelectors` per side.
    public static func responderChild(entry: PolicyEntry, family: IPAddress.Family) -> (local: [String], remote: [String])? {
        guard let local = entry.local.pattern(for: family)?.prefixes(limit: maxResponderSelectors),
              let remote = entry.remote.pattern(for: family)?.prefixes(limit: maxResponderSelectors) else { return nil }
        let (localPorts, remotePorts) = entry.proto.isICMP ? (PortRange.all, PortRange.all) : (entry.localPorts, entry.remotePorts)
        return (local.map { selector($0, proto: entry.proto, ports: localPorts) },
                remote.map { selector($0, proto: entry.proto, ports: remotePorts) })
    }
}
