/// What of a policy entry is its own: the entry without every earlier entry it shares
/// traffic with, as disjoint pieces an IKE child can each hold (one protocol, a pattern
/// and a port range per side).
///
/// The responder serves these pieces, not the whole entry: a child it accepts for an
/// entry then never takes traffic an earlier entry of its policy owns (a `deny`, whose
/// traffic goes in clear, or a `permit` another peer may answer for), whatever the peer
/// proposes, because charon narrows a proposal to one child config's selectors. And
/// because the pieces of all entries are disjoint, a proposal inside one piece (the one
/// the responder answered with) is narrowed to that piece's child and no other.
///
/// Like IKE selectors, pieces do not tell ICMP types and codes apart: an earlier ICMP
/// entry takes all of ICMP between its addresses. `any` protocol without one protocol
/// cannot be one selector: it becomes the protocols of `namedProtocols` (traffic of other
/// protocols in that part gets no piece, so no tunnel: it stays blocked, never leaks).
public enum EntryShare: Hashable, Sendable {
    /// No earlier entry shares traffic with the entry: it is all its own.
    case whole
    /// The entry's own part, as disjoint pieces (possibly none: earlier entries hold it all).
    case pieces([PolicyEntry])
    /// More pieces than a child config list may hold: the entry cannot be served exactly.
    case fragmented

    /// Most pieces one entry's share may have (each becomes one IKE child config).
    public static let maxPieces = 256

    /// The protocols `any` becomes when an earlier entry takes one protocol of it.
    public static func namedProtocols(_ family: IPAddress.Family) -> [IPProtocol] {
        [.tcp, .udp, family == .v4 ? .icmp : .icmpv6, .sctp, .gre]
    }

    /// The share of `entry` (one IP version) given the earlier entries that share traffic
    /// with it, in policy order.
    public static func of(_ entry: PolicyEntry, family: IPAddress.Family, without earlier: [PolicyEntry]) -> EntryShare {
        guard !earlier.isEmpty else { return .whole }
        guard var pieces = entry.restricted(to: family).map({ [$0] }) else { return .pieces([]) }
        for other in earlier {
            var next: [PolicyEntry] = []
            for piece in pieces {
                if piece.sharesTraffic(with: other, family: family) {
                    next.append(contentsOf: piece.subtracting(other, family: family))
                } else {
                    next.append(piece)
                }
                if next.count > maxPieces { return .fragmented }
            }
            pieces = next
        }
        return .pieces(pieces)
    }

    /// The piece holding a probe's packet summary (mirrored, as the responder matches),
    /// of an entry that matched it; nil when its share has none (or is fragmented).
    public func piece(of entry: PolicyEntry, holding summary: Packet) -> PolicyEntry? {
        switch self {
        case .whole: entry
        case .pieces(let pieces): pieces.first { $0.matchesInbound(summary) }
        case .fragmented: nil
        }
    }
}

extension PolicyEntry {
    /// This entry for one IP version, both sides as patterns; nil when it holds none of it.
    public func restricted(to family: IPAddress.Family) -> PolicyEntry? {
        guard let local = local.pattern(for: family), let remote = remote.pattern(for: family) else { return nil }
        return PolicyEntry(action: action, proto: proto, local: .pattern(local), localPorts: localPorts,
                           remote: .pattern(remote), remotePorts: remotePorts)
    }

    /// Whether a packet of `family` may lie in both entries, as IKE selectors see them
    /// (ICMP types and codes not told apart).
    public func sharesTraffic(with other: PolicyEntry, family: IPAddress.Family) -> Bool {
        guard let local = local.pattern(for: family), let remote = remote.pattern(for: family) else { return false }
        return TrafficSelector(proto: proto, local: local, localPorts: localPorts, remote: remote, remotePorts: remotePorts)
            .overlaps(other)
    }

    /// This entry without `other`, with which it shares traffic (both of `family`): disjoint
    /// entries, cut along the protocol, the local address, the remote address, then the
    /// ports. The protocol goes first: a protocol piece keeps its addresses whole, where
    /// address pieces of `any` would each be cut again by every later one-protocol entry.
    func subtracting(_ other: PolicyEntry, family: IPAddress.Family) -> [PolicyEntry] {
        guard var local = local.pattern(for: family), var remote = remote.pattern(for: family),
              let otherLocal = other.local.pattern(for: family), let otherRemote = other.remote.pattern(for: family)
        else { return [] }
        var proto = self.proto, localPorts = self.localPorts, remotePorts = self.remotePorts
        var pieces: [PolicyEntry] = []
        func piece(proto: IPProtocol, local: AddressPattern, localPorts: PortRange,
                   remote: AddressPattern, remotePorts: PortRange) -> PolicyEntry {
            PolicyEntry(action: action, proto: proto, local: .pattern(local), localPorts: localPorts,
                        remote: .pattern(remote), remotePorts: remotePorts)
        }
        if proto.isAny, !other.proto.isAny {
            let taken = other.proto.on(family)
            for named in EntryShare.namedProtocols(family) where named != taken {
                pieces.append(piece(proto: named, local: local, localPorts: localPorts, remote: remote, remotePorts: remotePorts))
            }
            proto = taken
        }
        for part in local.subtracting(otherLocal) {
            pieces.append(piece(proto: proto, local: part, localPorts: localPorts, remote: remote, remotePorts: remotePorts))
        }
        local = local.intersection(otherLocal) ?? local
        for part in remote.subtracting(otherRemote) {
            pieces.append(piece(proto: proto, local: local, localPorts: localPorts, remote: part, remotePorts: remotePorts))
        }
        remote = remote.intersection(otherRemote) ?? remote
        if proto.hasPorts {
            for part in localPorts.subtracting(other.localPorts) {
                pieces.append(piece(proto: proto, local: local, localPorts: part, remote: remote, remotePorts: remotePorts))
            }
            localPorts = localPorts.intersection(other.localPorts) ?? localPorts
            for part in remotePorts.subtracting(other.remotePorts) {
                pieces.append(piece(proto: proto, local: local, localPorts: localPorts, remote: remote, remotePorts: part))
            }
        }
        // What is left lies inside `other`: it is not this entry's.
        return pieces
    }
}

extension AddressPattern {
    /// The addresses of this pattern that `other` (which shares some) does not match, as
    /// disjoint patterns: one per bit `other` compares and this pattern ignores, highest
    /// first, that bit set against `other` and the higher ones with it. A prefix without
    /// a prefix gives prefixes.
    public func subtracting(_ other: AddressPattern) -> [AddressPattern] {
        var cut = other.mask.bits & ~mask.bits & family.allOnes
        var address = self.address.bits, mask = self.mask.bits
        var parts: [AddressPattern] = []
        while cut != 0 {
            let bit = UInt128(1) << (127 - cut.leadingZeroBitCount)
            cut &= ~bit
            parts.append(AddressPattern(family: family, address: (address & ~bit) | (~other.address.bits & bit), mask: mask | bit))
            address = (address & ~bit) | (other.address.bits & bit)
            mask |= bit
        }
        return parts
    }
}

extension PortRange {
    /// This range without `other`: at most two ranges, lower first.
    public func subtracting(_ other: PortRange) -> [PortRange] {
        guard let common = intersection(other) else { return [self] }
        var parts: [PortRange] = []
        if common.lower > lower, let below = PortRange(lower, common.lower - 1) { parts.append(below) }
        if common.upper < upper, let above = PortRange(common.upper + 1, upper) { parts.append(above) }
        return parts
    }
}
