import TEDModel

/// What sends first packets to ted instead of the traps: nftables table `inet ted-hold`
/// marks, in prerouting, each packet that a permit entry says must be protected (ACL
/// order: a `deny` above lets its traffic go) and that no tunnel carries yet; one
/// iptables rule per IP version queues marked packets to ted's netfilter queue
/// (nftables' own `queue` statement needs the `nft_queue` module, which not every kernel
/// has; iptables' NFQUEUE target through nft-compat is in every netfilter kernel).
///
/// Fail closed: the queue rule has no bypass, so while no ted reads the queue (stopped,
/// crashed, starting) its packets are dropped, and a packet ted gives no verdict dies
/// with ted's socket. Tunnels that are up are in the `tunnelled` sets (local prefix,
/// remote prefix, protocol, ports), whose packets are not marked; like the traps, the
/// table outlives ted, so tunnels keep flowing while ted is stopped. `ted cleanup`
/// removes it.
public struct HoldTable: Sendable {
    public static let tableName = "ted-hold"
    /// The mark bit of a packet to hold (ted clears it when it releases one).
    public static let mark: UInt32 = 0x4000_0000

    public let policy: Policy
    public let probePort: UInt16
    public let tunnelDevice: String?
    public let queue: UInt16

    public init(policy: Policy, probePort: UInt16, tunnelDevice: String?, queue: UInt16) {
        self.policy = policy
        self.probePort = probePort
        self.tunnelDevice = tunnelDevice
        self.queue = queue
    }

    /// The table as `nft -f` input: sets are created when missing and keep their
    /// elements (a restarting ted keeps live tunnels flowing); the chains are replaced.
    public var ruleset: String {
        let t = "inet \(Self.tableName)"
        var lines = ["add table \(t)"]
        for family in [IPAddress.Family.v4, .v6] {
            let type = family == .v4 ? "ipv4_addr" : "ipv6_addr"
            lines.append("add set \(t) \(Self.setName(family)) { type \(type) . \(type) . inet_proto . inet_service . inet_service; flags interval; }")
        }
        lines += ["add chain \(t) hold", "flush chain \(t) hold"]
        var rules = ["fib daddr type local return", "meta ipsec exists return"]
        if let tunnelDevice { rules.append("iifname \"\(tunnelDevice)\" return") }
        rules.append("\(NFTISAKMP.tedMessages(to: probePort)) return")
        rules.append("ip saddr . ip daddr . meta l4proto . th sport . th dport @\(Self.setName(.v4)) return")
        rules.append("ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @\(Self.setName(.v6)) return")
        for rule in policy.rules {
            for match in NFTPolicyMatch.matches(rule.entry, .outbound) {
                let verdict = rule.entry.action == .permit ? "meta mark set meta mark | \(Self.markText) return" : "return"
                rules.append("\(match) \(verdict) comment \"entry \(rule.index)\"")
            }
        }
        lines += rules.map { "add rule \(t) hold \($0)" }
        lines += ["add chain \(t) prerouting { type filter hook prerouting priority mangle - 10; policy accept; }",
                  "flush chain \(t) prerouting", "add rule \(t) prerouting jump hold"]
        return lines.joined(separator: "\n") + "\n"
    }

    static func setName(_ family: IPAddress.Family) -> String { family == .v4 ? "tunnelled4" : "tunnelled6" }
    private static var markText: String { "0x" + String(mark, radix: 16) }

    /// The iptables rule that queues marked packets (mangle prerouting runs after ted's
    /// chain, whose priority is 10 before it).
    var queueRule: [String] {
        ["PREROUTING", "-m", "mark", "--mark", "\(Self.markText)/\(Self.markText)", "-m", "comment", "--comment", "ted-hold",
         "-j", "NFQUEUE", "--queue-num", "\(queue)"]
    }

    /// Installs (or takes over) the table and the queue rules.
    public func install() throws(CommandError) {
        let result = runCommand(["nft", "-f", "-"], input: ruleset)
        guard result.status == 0 else { throw CommandError(command: "nft -f (table \(Self.tableName))", output: result.output) }
        try installQueueRules()
    }

    /// The queue rules alone (iptables, once per IP version), in place of any earlier ted's.
    public func installQueueRules() throws(CommandError) {
        Self.removeQueueRules()
        for tool in ["iptables", "ip6tables"] {
            let added = runCommand([tool, "-w", "-t", "mangle", "-I"] + queueRule)
            guard added.status == 0 else { throw CommandError(command: "\(tool) -t mangle -I PREROUTING ... NFQUEUE", output: added.output) }
        }
    }

    /// The set element of a tunnel's selector: the packets it carries.
    public static func element(_ selector: TrafficSelector) -> String {
        let ports = selector.proto.hasPorts
        let proto = selector.proto.isAny ? "0-255" : "\(selector.proto.on(selector.family).number)"
        return "\(selector.local) . \(selector.remote) . \(proto) . "
            + "\(NFTPolicyMatch.range(ports ? selector.localPorts : .all)) . \(NFTPolicyMatch.range(ports ? selector.remotePorts : .all))"
    }

    /// Adds tunnels' selectors to the sets, and removes others, in one transaction.
    public static func update(adding: [TrafficSelector], removing: [TrafficSelector]) throws(CommandError) {
        guard !adding.isEmpty || !removing.isEmpty else { return }
        try apply(removing.map { elementLine("delete", $0) } + adding.map { elementLine("add", $0) })
    }

    /// Makes the sets hold exactly these selectors, in one transaction.
    public static func replaceElements(_ selectors: [TrafficSelector]) throws(CommandError) {
        try apply([IPAddress.Family.v4, .v6].map { "flush set inet \(tableName) \(setName($0))" } + selectors.map { elementLine("add", $0) })
    }

    private static func elementLine(_ verb: String, _ selector: TrafficSelector) -> String {
        "\(verb) element inet \(tableName) \(setName(selector.family)) { \(element(selector)) }"
    }

    private static func apply(_ lines: [String]) throws(CommandError) {
        let result = runCommand(["nft", "-f", "-"], input: lines.joined(separator: "\n") + "\n")
        guard result.status == 0 else { throw CommandError(command: "nft (set elements of \(tableName))", output: result.output) }
    }

    /// Removes the table and the queue rules of any ted (`ted cleanup`, or hold turned off).
    public static func remove() {
        _ = runCommand(["nft", "delete", "table", "inet", tableName])
        removeQueueRules()
    }

    private static func removeQueueRules() {
        // Whatever queue number an earlier ted used: every rule carrying ted's comment.
        for tool in ["iptables", "ip6tables"] {
            let listed = runCommand([tool, "-w", "-t", "mangle", "-S", "PREROUTING"])
            guard listed.status == 0 else { continue }
            for line in listed.output.split(separator: "\n") where line.hasPrefix("-A ") && line.contains("ted-hold") {
                let spec = line.dropFirst(3).split(separator: " ").map { String($0).replacingOccurrences(of: "\"", with: "") }
                _ = runCommand([tool, "-w", "-t", "mangle", "-D"] + spec)
            }
        }
    }
}
