import TEDModel

/// ted's inbound guard, nftables table `inet ted-guard`: cleartext that arrives from the
/// outside with a source in a permit entry's remote half and a destination in its local
/// half is dropped and counted. Traffic out of a tunnel (kernel ESP: `meta ipsec exists`;
/// kernel-libipsec: from the tunnel device), TED probes and responses pass; entries are
/// matched in ACL order, so a `deny` above a `permit` lets its traffic in clear.
///
/// Its outbound chain (postrouting) is the XFRM traps' second layer: a packet a permit
/// entry protects that leaves without an IPsec transform (`rt ipsec missing`: the traps
/// were flushed) is dropped and counted, so that neither an XFRM flush nor an nftables
/// flush alone lets protected traffic out in clear while ted puts the other layer back.
/// It passes the tunnel device (kernel-libipsec), ESP, Neighbor Discovery, TED messages
/// (ted's probes carry P's addresses), and this host's own IKE and TED sockets.
///
/// The guard outlives ted: it is installed at start and left in place on stop, like the
/// XFRM traps, and only `ted cleanup` removes it.
public struct InboundGuard: Sendable {
    public static let tableName = "ted-guard"

    public let policy: Policy
    public let probePort: UInt16
    /// The TED socket's port, whose responses and challenges leave from it.
    public let listenPort: UInt16
    public let tunnelDevice: String?

    public init(policy: Policy, probePort: UInt16, listenPort: UInt16, tunnelDevice: String?) {
        self.policy = policy
        self.probePort = probePort
        self.listenPort = listenPort
        self.tunnelDevice = tunnelDevice
    }

    static let neighborDiscovery =
        "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept"

    /// The table as `nft -f` input; it replaces an earlier one atomically.
    public var ruleset: String {
        var rules: [String] = []
        if let tunnelDevice { rules.append("iifname \"\(tunnelDevice)\" accept") }
        rules.append("meta ipsec exists accept")
        // Neighbor Discovery finds the next hop (XFRMTrapPlan.neighborDiscoveryBypass).
        rules.append(Self.neighborDiscovery)
        rules.append("\(NFTISAKMP.tedMessages(to: probePort)) accept")
        for rule in policy.rules {
            for match in NFTPolicyMatch.matches(rule.entry, .inbound) {
                rules.append("\(match) \(rule.entry.action == .permit ? "counter drop" : "accept") comment \"entry \(rule.index)\"")
            }
        }
        var outbound: [String] = []
        if let tunnelDevice { outbound.append("oifname \"\(tunnelDevice)\" accept") }
        outbound.append("rt ipsec exists accept")
        outbound.append("meta l4proto esp accept")
        // Neighbor Discovery finds the next hop, as the traps let it (XFRMTrapPlan.neighborDiscoveryBypass).
        outbound.append(Self.neighborDiscovery)
        outbound.append("\(NFTISAKMP.tedMessages(to: probePort)) accept")
        outbound.append("fib saddr type local udp sport { \(Set([500, 4500, probePort, listenPort]).sorted().map(String.init).joined(separator: ", ")) } accept")
        for rule in policy.rules {
            for match in NFTPolicyMatch.matches(rule.entry, .outbound) {
                outbound.append("\(match) \(rule.entry.action == .permit ? "counter drop" : "accept") comment \"entry \(rule.index)\"")
            }
        }
        var lines = ["table inet \(Self.tableName) {}", "delete table inet \(Self.tableName)",
                     "table inet \(Self.tableName) {", "  chain guard {"]
        lines += rules.map { "    \($0)" }
        lines += ["  }", "  chain outbound {", "    type filter hook postrouting priority filter - 10; policy accept;"]
        lines += outbound.map { "    \($0)" }
        lines += ["  }",
                  "  chain input {", "    type filter hook input priority filter - 10; policy accept;", "    jump guard", "  }",
                  "  chain forward {", "    type filter hook forward priority filter - 10; policy accept;", "    jump guard", "  }",
                  // A TPROXY expression has the kernel reassemble fragments in this namespace,
                  // as interception does, without conntrack: fragments after the first carry
                  // no ports, so port-specific traps, holds and this guard would let them by.
                  // The rules match nothing (no packet comes from port 0 to the unspecified address).
                  "  chain reassemble {", "    type filter hook prerouting priority raw - 10; policy accept;",
                  "    ip daddr 0.0.0.0 tcp sport 0 tproxy ip to 127.0.0.1:9 comment \"reassembly\"",
                  "    ip6 daddr :: tcp sport 0 tproxy ip6 to [::1]:9 comment \"reassembly\"", "  }",
                  "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Installs (or replaces) the table.
    public func install() throws(CommandError) {
        let result = runCommand(["nft", "-f", "-"], input: ruleset)
        guard result.status == 0 else { throw CommandError(command: "nft -f (table \(Self.tableName))", output: result.output) }
    }

    /// Removes the table, whatever state it is in (`ted cleanup`).
    public static func remove() {
        _ = runCommand(["nft", "delete", "table", "inet", tableName])
    }
}
