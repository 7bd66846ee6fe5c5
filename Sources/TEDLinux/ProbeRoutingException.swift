/// Under kernel-libipsec, traffic into a tunnel is diverted by routing table 220, so a
/// later probe towards a host behind an existing tunnel would be routed into it. This
/// rule sends UDP to the probe port by the main table first (XFRM bypasses do nothing
/// there). Not needed, and not installed, when the kernel holds ESP states.
public struct ProbeRoutingException: Sendable {
    public static let priority = 100
    public let probePort: UInt16

    public init(probePort: UInt16) { self.probePort = probePort }

    private func arguments(_ verb: String, _ flag: String) -> [String] {
        ["ip", flag, "rule", verb, "ipproto", "udp", "dport", "\(probePort)", "lookup", "main", "priority", "\(Self.priority)"]
    }

    public func install() throws(CommandError) {
        remove()
        for flag in ["-4", "-6"] {
            let result = runCommand(arguments("add", flag))
            if result.status != 0, flag == "-4" {
                throw CommandError(command: arguments("add", flag).joined(separator: " "), output: result.output)
            }
        }
    }

    public func remove() {
        for flag in ["-4", "-6"] {
            for _ in 0..<8 where runCommand(arguments("del", flag)).status == 0 {}
        }
    }
}
