import TEDModel

/// ted's nftables table: steers TED probes (UDP to the probe port whose ISAKMP exchange
/// type byte is 240) addressed to the hosts this gateway protects, or to the gateway
/// itself, to a local transparent socket (TPROXY). Other IKE traffic is untouched, so an
/// IKE daemon on the same port keeps working.
public struct NFTInterception: Sendable {
    public static let tableName = "ted"
    /// The firewall mark and routing table that deliver TPROXY'd datagrams locally.
    public static let mark: UInt32 = 0x7ed
    /// The mark of a probe ted passed on (it is never intercepted again).
    public static let passedMark: UInt32 = 0x7ee
    public static let routingTable = 2029
    /// Ahead of the probe routing exception (priority 100), which would otherwise route
    /// an intercepted probe by the main table instead of delivering it locally.
    public static let rulePriority = 99

    public let destinations: [AddressPattern]
    public let probePort: UInt16
    public let listenPort: UInt16

    public init(destinations: [AddressPattern], probePort: UInt16, listenPort: UInt16) {
        self.destinations = destinations
        self.probePort = probePort
        self.listenPort = listenPort
    }

    /// The protected local sides of a policy's permit entries plus the gateway's identity.
    public static func destinations(policy: Policy, identity: IPAddress) -> [AddressPattern] {
        var result: [AddressPattern] = [.host(identity)]
        for rule in policy.permits {
            for family in [IPAddress.Family.v4, .v6] {
                if let pattern = rule.entry.local.pattern(for: family), !result.contains(pattern) { result.append(pattern) }
            }
        }
        return result
    }

    public var families: [IPAddress.Family] {
        [.v4, .v6].filter { family in destinations.contains { $0.family == family } }
    }

    /// The table as `nft -f` input (multi-line: nft 1.0.6 refuses a table on one line).
    public var ruleset: String {
        var lines = ["table inet \(Self.tableName) {", "  chain prerouting {",
                     "    type filter hook prerouting priority mangle; policy accept;"]
        let match = "meta mark != \(Self.passedMark) \(NFTISAKMP.probes(to: probePort))"
        for pattern in destinations {
            let (ip, tproxy) = pattern.family == .v4 ? ("ip", "ip") : ("ip6", "ip6")
            let address = pattern.prefixLength != nil
                ? "\(ip) daddr \(pattern)"
                : "\(ip) daddr & \(pattern.mask) == \(pattern.address)"
            lines.append("    \(address) \(match) tproxy \(tproxy) to :\(listenPort) meta mark set \(Self.mark) accept")
        }
        lines += ["  }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Installs the table (replacing a stale one) and the local-delivery routing.
    public func install() throws(CommandError) {
        remove()
        let result = runCommand(["nft", "-f", "-"], input: ruleset)
        guard result.status == 0 else { throw CommandError(command: "nft -f (table \(Self.tableName))", output: result.output) }
        for family in families {
            let flag = family == .v4 ? "-4" : "-6"
            let any = family == .v4 ? "0.0.0.0/0" : "::/0"
            _ = runCommand(["ip", flag, "rule", "add", "fwmark", "\(Self.mark)", "lookup", "\(Self.routingTable)", "priority", "\(Self.rulePriority)"])
            let route = runCommand(["ip", flag, "route", "replace", "local", any, "dev", "lo", "table", "\(Self.routingTable)"])
            guard route.status == 0 else { remove(); throw CommandError(command: "ip route local (table \(Self.routingTable))", output: route.output) }
        }
    }

    /// Removes the table and routing, whatever state they are in.
    public func remove() { Self.removeAll() }

    /// Removes the table and routing of any ted (`ted cleanup`).
    public static func removeAll() {
        _ = runCommand(["nft", "delete", "table", "inet", tableName])
        for flag in ["-4", "-6"] {
            for _ in 0..<8 where runCommand(["ip", flag, "rule", "del", "fwmark", "\(mark)", "lookup", "\(routingTable)"]).status == 0 {}
            _ = runCommand(["ip", flag, "route", "flush", "table", "\(routingTable)"])
        }
    }
}
