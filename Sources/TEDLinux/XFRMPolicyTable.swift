import CTEDLinux
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// ted's XFRM policies in the kernel: installs a plan, removes exactly what it installed,
/// and cleans what a crashed ted left (every outbound policy in ted's priority band).
public final class XFRMPolicyTable: @unchecked Sendable {
    fileprivate let fd: Int32
    private var installed: [(policy: PlannedXFRMPolicy, interface: Int32)] = []

    public init() throws(LinuxError) {
        fd = try check(ted_xfrm_open(0, 2000), "open NETLINK_XFRM")
    }

    deinit { close(fd) }

    /// Deletes every outbound policy in ted's band; returns how many.
    @discardableResult
    public func removeStale() throws(LinuxError) -> Int {
        try deleteBand { _ in true }
    }

    /// Takes the kernel's state over in place: installs the plan as XFRM updates (a policy
    /// that exists is replaced, never deleted first, so no packet meets a gap), then deletes
    /// the policies in ted's band that the plan no longer has, except bypasses on
    /// `keepInterface` (live tunnels' bypasses, reconciled once the IKE daemon is asked).
    /// Returns how many were deleted.
    @discardableResult
    public func adopt(_ plan: [PlannedXFRMPolicy], interface: Int32 = 0, keepInterface: Int32? = nil) throws(LinuxError) -> Int {
        for policy in plan {
            var selector = Self.selector(policy, interface: interface)
            let result = ted_xfrm_add_policy(fd, &selector, policy.priority, policy.trap ? 1 : 0, policy.reqid)
            if result < 0 {
                throw LinuxError("update XFRM policy for entry \(policy.ruleIndex) (\(policy.source) -> \(policy.destination))", code: -result)
            }
            installed.append((policy, interface))
        }
        let wanted = Set(plan.map { SelectorKey(Self.selector($0, interface: interface)) })
        return try deleteBand { selector in
            !wanted.contains(SelectorKey(selector)) && (keepInterface == nil || selector.ifindex != keepInterface)
        }
    }

    /// Deletes the band's policies on any interface but `trapInterface` (bypasses) whose key
    /// is not in `except`; returns how many.
    public func removeBand(exceptInterface trapInterface: Int32, except: Set<SelectorKey>) throws(LinuxError) -> Int {
        try deleteBand { $0.ifindex != trapInterface && !except.contains(SelectorKey($0)) }
    }

    /// The key of a planned policy's selector on `interface`.
    public static func key(_ policy: PlannedXFRMPolicy, interface: Int32) -> SelectorKey {
        SelectorKey(selector(policy, interface: interface))
    }

    /// The selectors of every outbound policy in ted's band now (at most `capacity`).
    public func bandSelectors(capacity: Int = 1 << 16) throws(LinuxError) -> [ted_selector] {
        try dumpBand(capacity: capacity).selectors
    }

    /// One dump of the band: up to `capacity` selectors, and how many the band holds.
    private func dumpBand(capacity: Int = 1 << 16) throws(LinuxError) -> (selectors: [ted_selector], total: Int) {
        var found = [ted_selector](repeating: ted_selector(), count: capacity)
        let count = try check(ted_xfrm_dump_policies(fd, XFRMTrapPlan.priorityBase, XFRMTrapPlan.priorityBandEnd,
                                                      &found, Int32(found.count)), "dump XFRM policies")
        return (Array(found.prefix(min(Int(count), capacity))), Int(count))
    }

    /// Deletes the band's policies that `doomed` picks, dumping again while the band held
    /// more than one dump returned; returns how many were deleted.
    private func deleteBand(where doomed: (ted_selector) -> Bool) throws(LinuxError) -> Int {
        var removed = 0
        while true {
            let (selectors, total) = try dumpBand()
            var removedNow = 0
            for selector in selectors where doomed(selector) {
                var selector = selector
                if ted_xfrm_delete_policy(fd, &selector) == 0 { removedNow += 1 }
            }
            removed += removedNow
            if total <= selectors.count || removedNow == 0 { return removed }
        }
    }

    /// Installs every policy of the plan (replacing equal selectors); on failure removes
    /// what it had installed and throws.
    public func install(_ plan: [PlannedXFRMPolicy], interface: Int32 = 0) throws(LinuxError) {
        for policy in plan {
            var selector = Self.selector(policy, interface: interface)
            let result = ted_xfrm_add_policy(fd, &selector, policy.priority, policy.trap ? 1 : 0, policy.reqid)
            if result < 0 {
                remove(plan, interface: interface)
                throw LinuxError("add XFRM policy for entry \(policy.ruleIndex) (\(policy.source) -> \(policy.destination))", code: -result)
            }
            installed.append((policy, interface))
        }
    }

    /// Removes these policies (installed with `interface`), if this table installed them.
    public func remove(_ plan: [PlannedXFRMPolicy], interface: Int32 = 0) {
        for policy in plan {
            guard let index = installed.firstIndex(where: { $0.policy == policy && $0.interface == interface }) else { continue }
            var selector = Self.selector(policy, interface: interface)
            _ = ted_xfrm_delete_policy(fd, &selector)
            installed.remove(at: index)
        }
    }

    public var installedCount: Int { installed.count }

    static func selector(_ policy: PlannedXFRMPolicy, interface: Int32) -> ted_selector {
        var selector = ted_selector()
        selector.family = policy.family.rawValue
        selector.proto = policy.proto
        selector.prefixlen_s = UInt8(policy.source.prefixLength ?? policy.family.bitWidth)
        selector.prefixlen_d = UInt8(policy.destination.prefixLength ?? policy.family.bitWidth)
        withUnsafeMutableBytes(of: &selector.saddr) { out in
            for (index, byte) in policy.source.address.bytes.enumerated() { out[index] = byte }
        }
        withUnsafeMutableBytes(of: &selector.daddr) { out in
            for (index, byte) in policy.destination.address.bytes.enumerated() { out[index] = byte }
        }
        selector.sport = policy.sourcePort
        selector.sport_mask = policy.sourcePortMask
        selector.dport = policy.destinationPort
        selector.dport_mask = policy.destinationPortMask
        selector.ifindex = interface
        return selector
    }
}

extension ted_selector {
    /// The selector as the packet that triggered an ACQUIRE: its addresses are the
    /// packet's (/32 or /128); port 0 is unknown.
    var packet: Packet? {
        let family: IPAddress.Family = self.family == 6 ? .v6 : .v4
        let count = family.byteCount
        let source = withUnsafeBytes(of: saddr) { IPAddress(bytes: Array($0.prefix(count))) }
        let destination = withUnsafeBytes(of: daddr) { IPAddress(bytes: Array($0.prefix(count))) }
        guard let source, let destination else { return nil }
        let proto = IPProtocol(self.proto)
        let ports = proto.allowsPortSelectors
        return Packet(proto: proto, source: source, destination: destination,
                      sourcePort: ports && (sport != 0 || proto.isICMP) ? sport : nil,
                      destinationPort: ports && (dport != 0 || proto.isICMP) ? dport : nil)
    }
}

/// A selector as a hashable value (addresses, prefixes, protocol, ports, interface).
public struct SelectorKey: Hashable, Sendable {
    let fields: [UInt32]
    let addresses: [UInt8]

    init(_ s: ted_selector) {
        fields = [UInt32(s.family), UInt32(s.proto), UInt32(s.prefixlen_s), UInt32(s.prefixlen_d),
                  UInt32(s.sport), UInt32(s.sport_mask), UInt32(s.dport), UInt32(s.dport_mask), UInt32(bitPattern: s.ifindex)]
        let count = s.family == 6 ? 16 : 4
        addresses = withUnsafeBytes(of: s.saddr) { Array($0.prefix(count)) } + withUnsafeBytes(of: s.daddr) { Array($0.prefix(count)) }
    }
}

/// The index of a network interface, or nil when it does not exist.
public func interfaceIndex(_ name: String) -> Int32? {
    let index = if_nametoindex(name)
    return index == 0 ? nil : Int32(index)
}

extension XFRMPolicyTable {
    /// Adds again the policies of `plan` (on `interface`) that are no longer in the kernel
    /// (`ip xfrm policy flush`, another program); returns how many. Those still there are
    /// left alone: no packet meets a gap because of the repair.
    @discardableResult
    public func restoreMissing(_ plan: [PlannedXFRMPolicy], interface: Int32 = 0) throws(LinuxError) -> Int {
        let present = Set(try bandSelectors().map(SelectorKey.init))
        let missing = plan.filter { !present.contains(Self.key($0, interface: interface)) }
        for policy in missing {
            var selector = Self.selector(policy, interface: interface)
            let result = ted_xfrm_add_policy(fd, &selector, policy.priority, policy.trap ? 1 : 0, policy.reqid)
            if result < 0 {
                throw LinuxError("restore XFRM policy for entry \(policy.ruleIndex) (\(policy.source) -> \(policy.destination))",
                                 code: -result)
            }
        }
        return missing.count
    }
}
