import TEDModel

/// One XFRM outbound policy ted installs: a selector, its priority and what it does.
public struct PlannedXFRMPolicy: Hashable, Sendable {
    public var family: IPAddress.Family
    public var proto: UInt8
    public var source: AddressPattern
    public var destination: AddressPattern
    /// Port (or ICMP type/code) and its mask, as XFRM selectors hold them.
    public var sourcePort: UInt16, sourcePortMask: UInt16
    public var destinationPort: UInt16, destinationPortMask: UInt16
    public var priority: UInt32
    /// A trap (tunnel template, unknown peer) for a permit; a bypass for a deny.
    public var trap: Bool
    public var reqid: UInt32
    /// The policy entry (1-based) this selector came from.
    public var ruleIndex: Int

    /// What the kernel tells policies apart by (in one direction, on one interface): the
    /// selector without priority or action.
    struct Selector: Hashable {
        var family: IPAddress.Family, proto: UInt8
        var source: AddressPattern, destination: AddressPattern
        var sourcePort: UInt16, sourcePortMask: UInt16, destinationPort: UInt16, destinationPortMask: UInt16
    }

    var selector: Selector {
        Selector(family: family, proto: proto, source: source, destination: destination, sourcePort: sourcePort,
                 sourcePortMask: sourcePortMask, destinationPort: destinationPort, destinationPortMask: destinationPortMask)
    }
}

/// Why a policy cannot be expressed as XFRM selectors.
public struct XFRMPlanError: Error, Hashable, Sendable, CustomStringConvertible {
    public let ruleIndex: Int
    public let text: String
    public let reason: String
    public var description: String { "policy entry \(ruleIndex) (\(text)): \(reason)" }
}

/// The XFRM policies for a crypto ACL (patent blocks 202-208: packets that policy says
/// must be protected and have no tunnel raise an ACQUIRE instead of leaving in clear).
///
/// Every policy lives in ted's priority band `base ... base + 0xffff`: that tags them as
/// ted's and keeps them below (numerically above) the real IPsec policies an IKE daemon
/// installs. Entry i gets priority `base + i`, so XFRM keeps the ACL's first-match order.
/// The kernel keeps one policy per selector whatever its priority (an insert replaces the
/// policy with the same selector), so a selector an earlier entry already planned is left
/// out: first match gives its packets to the earlier entry anyway, and planning it again
/// would let the later entry's action replace the earlier one's.
/// XFRM selectors hold prefixes and port/mask pairs: a non-contiguous mask becomes the
/// prefixes it covers, a port range the aligned blocks that cover it, up to
/// `maxSelectorsPerEntry` selectors per entry; beyond that the entry is refused.
public enum XFRMTrapPlan {
    public static let priorityBase: UInt32 = 0x7ed0_0000
    public static let priorityBandEnd: UInt32 = 0x7ed0_ffff
    public static let reqidBase: UInt32 = 0x7ed0_0000

    public static func plan(_ policy: Policy, maxSelectorsPerEntry: Int) throws(XFRMPlanError) -> [PlannedXFRMPolicy] {
        var result: [PlannedXFRMPolicy] = []
        var planned = Set<PlannedXFRMPolicy.Selector>()
        for rule in policy.rules {
            let entry = rule.entry
            for family in entry.families {
                guard let local = entry.local.pattern(for: family), let remote = entry.remote.pattern(for: family) else { continue }
                let sourcePorts = portBlocks(entry.localPorts), destinationPorts = portBlocks(entry.remotePorts)
                let count = [local.prefixCount, remote.prefixCount, sourcePorts.count, destinationPorts.count].reduce(1) {
                    let (product, overflow) = $0.multipliedReportingOverflow(by: $1)
                    return overflow ? Int.max : product
                }
                guard count <= maxSelectorsPerEntry, let sources = local.prefixes(limit: maxSelectorsPerEntry),
                      let destinations = remote.prefixes(limit: maxSelectorsPerEntry) else {
                    throw XFRMPlanError(ruleIndex: rule.index, text: rule.text,
                                        reason: "needs \(count == Int.max ? "too many" : "\(count)") XFRM selectors (more than \(maxSelectorsPerEntry)); "
                                            + "write it as prefixes and port ranges XFRM can hold, or raise dataplane.max-selectors-per-entry")
                }
                for source in sources {
                    for destination in destinations {
                        for sourcePort in sourcePorts {
                            for destinationPort in destinationPorts {
                                let policy = PlannedXFRMPolicy(
                                    family: family, proto: entry.proto.on(family).number, source: source, destination: destination,
                                    sourcePort: sourcePort.port, sourcePortMask: sourcePort.mask,
                                    destinationPort: destinationPort.port, destinationPortMask: destinationPort.mask,
                                    priority: priorityBase + UInt32(min(rule.index, 0xffff)),
                                    trap: entry.action == .permit, reqid: reqidBase + UInt32(min(rule.index, 0xffff)),
                                    ruleIndex: rule.index)
                                if planned.insert(policy.selector).inserted { result.append(policy) }
                            }
                        }
                    }
                }
            }
        }
        if result.contains(where: { $0.family == .v6 }) { result += neighborDiscoveryBypass }
        return result
    }

    /// ICMPv6 Neighbor Discovery (router and neighbour solicitations and advertisements,
    /// redirects: types 133-137) ahead of every trap: it is how IPv6 finds the next hop, and
    /// a permit whose remote half holds the gateway's own inside prefix (`2001:db8:1::/64
    /// 2001:db8::/32`) would otherwise trap the gateway's advertisements to its own hosts,
    /// which then never reach it. ARP needs no such thing: it is not IP.
    public static let neighborDiscoveryBypass: [PlannedXFRMPolicy] = portBlocks(PortRange(133, 137)!).map { block in
        PlannedXFRMPolicy(family: .v6, proto: IPProtocol.icmpv6.number, source: .any(.v6), destination: .any(.v6),
                          sourcePort: block.port, sourcePortMask: block.mask, destinationPort: 0, destinationPortMask: 0,
                          priority: priorityBase, trap: false, reqid: 0, ruleIndex: 0)
    }

    /// Bypass policies for the traffic of an established tunnel (kernel-libipsec only: they
    /// are installed on `dev ipsec0`, so only traffic already routed into the tunnel device
    /// skips the traps). Priority `base`: ahead of every trap.
    public static func tunnelBypass(proto: IPProtocol, source: AddressPattern, sourcePorts: PortRange,
                                    destination: AddressPattern, destinationPorts: PortRange) -> [PlannedXFRMPolicy] {
        var result: [PlannedXFRMPolicy] = []
        for sourcePort in portBlocks(proto.hasPorts ? sourcePorts : .all) {
            for destinationPort in portBlocks(proto.hasPorts ? destinationPorts : .all) {
                result.append(PlannedXFRMPolicy(
                    family: source.family, proto: proto.on(source.family).number, source: source, destination: destination,
                    sourcePort: sourcePort.port, sourcePortMask: sourcePort.mask,
                    destinationPort: destinationPort.port, destinationPortMask: destinationPort.mask,
                    priority: priorityBase, trap: false, reqid: 0, ruleIndex: 0))
            }
        }
        return result
    }

    /// Aligned (port, mask) blocks whose union is the range.
    public static func portBlocks(_ range: PortRange) -> [(port: UInt16, mask: UInt16)] {
        if range.isAll { return [(0, 0)] }
        var blocks: [(UInt16, UInt16)] = []
        var low = Int(range.lower)
        let high = Int(range.upper)
        while low <= high {
            var size = 1
            while low % (size * 2) == 0 && low + size * 2 - 1 <= high && size < 65536 { size *= 2 }
            blocks.append((UInt16(low), UInt16(truncatingIfNeeded: ~(size - 1) & 0xffff)))
            low += size
        }
        return blocks
    }
}
