/// One policy entry flattened for building the trees: plain integers, no enums.
///
/// `any` on a side is the empty mask; the IP version is not stored because a rule only
/// goes into the trees of the versions it can match.
struct ClassifierRule: Sendable {
    let localAddress: UInt128
    let localMask: UInt128
    let remoteAddress: UInt128
    let remoteMask: UInt128
    let localLower: UInt16
    let localUpper: UInt16
    let remoteLower: UInt16
    let remoteUpper: UInt16
    /// 0 matches every protocol.
    let proto: UInt8
    /// ICMP type and code keep their sides in both roles (see `PolicyEntry.matchesInbound`).
    let isICMP: Bool

    init(_ entry: PolicyEntry) {
        func bits(_ match: AddressMatch) -> (address: UInt128, mask: UInt128) {
            switch match {
            case .any: (0, 0)
            case .pattern(let pattern): (pattern.address.bits, pattern.mask.bits)
            }
        }
        (localAddress, localMask) = bits(entry.local)
        (remoteAddress, remoteMask) = bits(entry.remote)
        localLower = entry.localPorts.lower
        localUpper = entry.localPorts.upper
        remoteLower = entry.remotePorts.lower
        remoteUpper = entry.remotePorts.upper
        proto = entry.proto.number
        isICMP = entry.proto.isICMP
    }
}

/// An entry as a leaf stores it, inline and in leaf order so a leaf is read sequentially;
/// `Address` is `UInt32` for IPv4 (32 bytes an entry) and `UInt128` for IPv6.
struct LeafRule<Address: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    let localAddress: Address
    let localMask: Address
    let remoteAddress: Address
    let remoteMask: Address
    let localLower: UInt16
    let localUpper: UInt16
    let remoteLower: UInt16
    let remoteUpper: UInt16
    /// The entry's 0-based position in the policy.
    let position: Int32
    let proto: UInt8
    let isICMP: Bool

    init(_ rule: ClassifierRule, position: Int32) {
        localAddress = Address(truncatingIfNeeded: rule.localAddress)
        localMask = Address(truncatingIfNeeded: rule.localMask)
        remoteAddress = Address(truncatingIfNeeded: rule.remoteAddress)
        remoteMask = Address(truncatingIfNeeded: rule.remoteMask)
        localLower = rule.localLower
        localUpper = rule.localUpper
        remoteLower = rule.remoteLower
        remoteUpper = rule.remoteUpper
        self.position = position
        // The trees of each version hold their own rules: `icmp` there is what packets carry.
        proto = IPProtocol(rule.proto).on(classifierFamily(Address.self)).number
        isICMP = rule.isICMP
    }

    /// The same answer as `PolicyEntry.matchesOutbound` / `matchesInbound` for a packet of
    /// a version this entry can match.
    @inline(__always)
    func matches(_ key: ClassifierKey<Address>) -> Bool {
        guard proto == 0 || proto == key.proto,
              key.local & localMask == localAddress,
              key.remote & remoteMask == remoteAddress else { return false }
        let (localPort, remotePort) = isICMP ? (key.icmpType, key.icmpCode) : (key.localPort, key.remotePort)
        return (localPort < 0 || (Int32(localLower) <= localPort && localPort <= Int32(localUpper)))
            && (remotePort < 0 || (Int32(remoteLower) <= remotePort && remotePort <= Int32(remoteUpper)))
    }
}

/// A packet seen from one role: which address and port are local. An absent port is -1.
struct ClassifierKey<Address: FixedWidthInteger & UnsignedInteger> {
    let proto: UInt8
    let local: Address
    let remote: Address
    let localPort: Int32
    let remotePort: Int32
    /// ICMP type (the packet's source port) and code (its destination port), in either role.
    let icmpType: Int32
    let icmpCode: Int32

    @inline(__always)
    init(_ packet: Packet, as role: Role) {
        let source = packet.sourcePort.map(Int32.init) ?? -1
        let destination = packet.destinationPort.map(Int32.init) ?? -1
        // The key's own version, not the packet's field: a constant once the lookup is specialized.
        proto = packet.proto.on(classifierFamily(Address.self)).number
        icmpType = source
        icmpCode = destination
        let (sourceBits, destinationBits) = (Address(truncatingIfNeeded: packet.source.bits),
                                             Address(truncatingIfNeeded: packet.destination.bits))
        switch role {
        case .initiator:
            (local, remote) = (sourceBits, destinationBits)
            (localPort, remotePort) = (source, destination)
        case .responder:
            (local, remote) = (destinationBits, sourceBits)
            (localPort, remotePort) = (destination, source)
        }
    }
}

/// The IP version whose trees and keys hold `Address` (`UInt32`: IPv4, `UInt128`: IPv6), so that
/// `icmp` is resolved to what that version's packets carry where the classifier is compiled.
@inline(__always)
func classifierFamily<Address: FixedWidthInteger>(_: Address.Type) -> IPAddress.Family {
    Address.bitWidth == 128 ? .v6 : .v4
}
