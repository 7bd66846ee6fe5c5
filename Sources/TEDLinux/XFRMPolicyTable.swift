import CTEDLinux
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// ted's XFRM policies in the kernel: installs a plan, removes exactly what it installed,
/// and cleans what a crashed ted left (every outbound policy in ted's priority band).
public final class XFRMPolicyTable: @unchecked Sendable {
    private let fd: Int32
    private var installed: [(policy: PlannedXFRMPolicy, interface: Int32)] = []

    public init() throws(LinuxError) {
        fd = try check(ted_xfrm_open(0, 2000), "open NETLINK_XFRM")
    }

    deinit { close(fd) }

    /// Deletes every outbound policy in ted's band; returns how many.
    @discardableResult
    public func removeStale() throws(LinuxError) -> Int {
        var removed = 0
        for _ in 0..<64 {
            var found = [ted_selector](repeating: ted_selector(), count: 1024)
            let count = try check(ted_xfrm_dump_policies(fd, XFRMTrapPlan.priorityBase, XFRMTrapPlan.priorityBandEnd,
                                                          &found, Int32(found.count)), "dump XFRM policies")
            if count == 0 { return removed }
            for selector in found.prefix(Int(min(count, 1024))) {
                var selector = selector
                if ted_xfrm_delete_policy(fd, &selector) == 0 { removed += 1 }
            }
        }
        return removed
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

    /// Removes exactly the policies this table installed.
    public func removeInstalled() {
        for (policy, interface) in installed.reversed() {
            var selector = Self.selector(policy, interface: interface)
            _ = ted_xfrm_delete_policy(fd, &selector)
        }
        installed = []
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

/// The index of a network interface, or nil when it does not exist.
public func interfaceIndex(_ name: String) -> Int32? {
    let index = if_nametoindex(name)
    return index == 0 ? nil : Int32(index)
}
