/// Which end of a discovery a gateway plays.
public enum Role: String, Hashable, Sendable, CaseIterable {
    case initiator
    case responder
}

/// One side of an ACL entry: `any` (either IP version) or a pattern.
public enum AddressMatch: Hashable, Sendable {
    case any
    case pattern(AddressPattern)

    public var family: IPAddress.Family? {
        if case .pattern(let pattern) = self { return pattern.family }
        return nil
    }

    public func contains(_ address: IPAddress) -> Bool {
        switch self {
        case .any: true
        case .pattern(let pattern): pattern.contains(address)
        }
    }

    /// The pattern for a given IP version (`any` becomes all addresses of it).
    public func pattern(for family: IPAddress.Family) -> AddressPattern? {
        switch self {
        case .any: .any(family)
        case .pattern(let pattern): pattern.family == family ? pattern : nil
        }
    }
}

/// A crypto-ACL entry, written from the local gateway's view (source = local side).
///
/// For ICMP, `localPorts` holds the ICMP type and `remotePorts` the code: they keep
/// those meanings in both roles, as in the wire format (initiator side = type).
public struct PolicyEntry: Hashable, Sendable {
    public enum Action: String, Hashable, Sendable {
        case permit
        case deny
    }

    public let action: Action
    public let proto: IPProtocol
    public let local: AddressMatch
    public let localPorts: PortRange
    public let remote: AddressMatch
    public let remotePorts: PortRange

    public init(action: Action, proto: IPProtocol, local: AddressMatch, localPorts: PortRange = .all,
                remote: AddressMatch, remotePorts: PortRange = .all) {
        self.action = action
        self.proto = (local.family ?? remote.family).map(proto.on) ?? proto
        self.local = local
        self.localPorts = localPorts
        self.remote = remote
        self.remotePorts = remotePorts
    }

    /// The IP version the entry is limited to, or nil when both sides are `any`.
    public var family: IPAddress.Family? { local.family ?? remote.family }

    /// The IP versions the entry holds packets of: its one family, or both for `any any`.
    public var families: [IPAddress.Family] { family.map { [$0] } ?? [.v4, .v6] }

    /// Whether a packet leaving the local side for the remote side matches (initiator lookup).
    public func matchesOutbound(_ packet: Packet) -> Bool {
        matches(packet, localAddress: packet.source, remoteAddress: packet.destination,
                localPort: packet.sourcePort, remotePort: packet.destinationPort)
    }

    /// Whether a packet arriving from the remote side for the local side matches: the
    /// responder's mirrored lookup of a probe's packet summary.
    public func matchesInbound(_ packet: Packet) -> Bool {
        if proto.isICMP {
            return matches(packet, localAddress: packet.destination, remoteAddress: packet.source,
                           localPort: packet.sourcePort, remotePort: packet.destinationPort)
        }
        return matches(packet, localAddress: packet.destination, remoteAddress: packet.source,
                       localPort: packet.destinationPort, remotePort: packet.sourcePort)
    }

    private func matches(_ packet: Packet, localAddress: IPAddress, remoteAddress: IPAddress,
                         localPort: UInt16?, remotePort: UInt16?) -> Bool {
        (proto.isAny || proto.on(packet.family) == packet.proto.on(packet.family))
            && local.contains(localAddress) && remote.contains(remoteAddress)
            && localPort.map(localPorts.contains) ?? true
            && remotePort.map(remotePorts.contains) ?? true
    }

    /// This entry as a proxy in the TED initiator's view, for one IP version.
    ///
    /// As initiator the local side is the initiator side; as responder it is the
    /// responder side. ICMP type and code never swap sides.
    public func proxy(as role: Role, family: IPAddress.Family) -> Proxy? {
        guard let localPattern = local.pattern(for: family),
              let remotePattern = remote.pattern(for: family) else { return nil }
        switch role {
        case .initiator:
            return Proxy(proto: proto.on(family), initiatorSide: HalfProxy(pattern: localPattern, ports: localPorts),
                         responderSide: HalfProxy(pattern: remotePattern, ports: remotePorts))
        case .responder:
            let (initiatorPorts, responderPorts) = proto.isICMP ? (localPorts, remotePorts) : (remotePorts, localPorts)
            return Proxy(proto: proto.on(family), initiatorSide: HalfProxy(pattern: remotePattern, ports: initiatorPorts),
                         responderSide: HalfProxy(pattern: localPattern, ports: responderPorts))
        }
    }
}
