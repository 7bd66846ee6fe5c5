import TEDModel

/// A policy entry as nftables matches, one per IP version: the same entry read outbound
/// (source in the local half, destination in the remote half: traffic to protect) or
/// inbound (the mirror: traffic coming back). Masks may be non-contiguous; ICMP entries
/// match the protocol only (type and code have no mirror).
enum NFTPolicyMatch {
    enum Direction { case outbound, inbound }

    static func matches(_ entry: PolicyEntry, _ direction: Direction) -> [String] {
        return entry.families.compactMap { family in
            guard let localPattern = entry.local.pattern(for: family), let remotePattern = entry.remote.pattern(for: family)
            else { return nil }
            let outbound = direction == .outbound
            let (source, destination) = outbound ? (localPattern, remotePattern) : (remotePattern, localPattern)
            let (sourcePorts, destinationPorts) = outbound ? (entry.localPorts, entry.remotePorts) : (entry.remotePorts, entry.localPorts)
            let ip = family == .v4 ? "ip" : "ip6"
            var parts = ["meta nfproto \(family == .v4 ? "ipv4" : "ipv6")"]
            if let source = address(source, "\(ip) saddr") { parts.append(source) }
            if let destination = address(destination, "\(ip) daddr") { parts.append(destination) }
            if !entry.proto.isAny {
                parts.append("meta l4proto \(entry.proto.on(family).number)")
                if entry.proto.hasPorts {
                    if !sourcePorts.isAll { parts.append("th sport \(range(sourcePorts))") }
                    if !destinationPorts.isAll { parts.append("th dport \(range(destinationPorts))") }
                }
            }
            return parts.joined(separator: " ")
        }
    }

    static func address(_ pattern: AddressPattern, _ field: String) -> String? {
        if pattern.prefixLength == 0 { return nil }
        if pattern.prefixLength != nil { return "\(field) \(pattern)" }
        return "\(field) & \(pattern.mask) == \(pattern.address)"
    }

    static func range(_ ports: PortRange) -> String {
        ports.lower == ports.upper ? "\(ports.lower)" : "\(ports.lower)-\(ports.upper)"
    }
}
