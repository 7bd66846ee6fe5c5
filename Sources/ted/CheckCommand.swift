import ArgumentParser
import TEDConfig
import TEDModel

/// `ted check`: validate a configuration file and summarise it.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file and print a one-screen summary (exit 0, or 2 with file:line:col).")

    @Argument(help: "The configuration file (YAML); the same as --config, kept for scripts that name it so.")
    var path: String?

    @Option(help: "The configuration file (YAML) (default: \(defaultConfigPath)).")
    var config: String?

    func validate() throws {
        if let path, let config, path != config {
            throw ValidationError("two configuration files given ('\(path)' and --config '\(config)'); name one")
        }
    }

    func run() throws {
        let configuration = try loadConfiguration(path ?? config ?? defaultConfigPath)
        for warning in configuration.warnings { printError(warning.description) }
        print(ConfigurationSummary(configuration).lines.joined(separator: "\n"))
    }
}

/// The human summary `ted check` prints.
struct ConfigurationSummary {
    let lines: [String]

    init(_ c: Configuration, maxRules: Int = 12) {
        var lines = [
            "identity:       \(c.identity) (advertised TED port \(c.advertisePort))",
            "listen:         \(c.listen)    probes to port \(c.probePort)",
        ]
        let permits = c.policy.permits.count
        lines.append("policy:         \(c.policy.rules.count) entries (\(permits) permit, \(c.policy.rules.count - permits) deny)")
        for rule in c.policy.rules.prefix(maxRules) {
            let at = rule.line.map { "line \($0)" } ?? ""
            lines.append("  \(String(rule.index).leftPadded(4)) \(at.leftPadded(9))  \(rule.text)")
        }
        if c.policy.rules.count > maxRules { lines.append("  ... \(c.policy.rules.count - maxRules) more") }
        lines.append("peers:          \(c.peers.isEmpty ? "any" : c.peers.map(\.description).joined(separator: "; "))")
        if c.peers.isEmpty {
            lines.append("warning:        no 'peers': any gateway on a probe's path may answer and claim anything; IKE must prove it")
        }
        for peer in c.peers where peer.protects == nil {
            lines.append("warning:        peer \(peer.identity) has no 'protects': it may claim anything")
        }
        for (first, second) in c.peers.overlappingPairs {
            let (a, b) = (c.peers[first], c.peers[second])
            let decider = b.specificity > a.specificity ? b : a
            lines.append("warning:        peers \(a.identity) and \(b.identity) overlap: where both hold an address only \(decider.identity) "
                + "decides (its claims, its key, its IKE children)")
        }
        let d = c.discovery
        lines.append("discovery:      \(d.retries) retries from \(d.timeout) s, cache \(d.cacheTTL) s, negative \(d.negativeTTL) s, tables \(d.maxPending)/\(d.maxCache)")
        let r = c.responder
        lines.append("responder:      \(r.enabled ? "on" : "off"), \(r.rate)/s per source (burst \(r.burst)), \(r.globalRate)/s global, offer all permits: \(r.offerAll)")
        let p = c.dataplane
        lines.append("dataplane:      traps \(p.traps ? "on" : "off"), interception \(p.intercept ? "on (port \(p.interceptPort))" : "off")"
            + (p.effectiveAcquireExpires.map { ", acquire-expires \($0) s\(p.acquireExpires == nil ? " (default: larval states end soon, no flow starves others)" : "")" } ?? ""))
        let h = c.hold
        lines.append("hold:           " + (p.traps && h.enabled
            ? "first packets held (queue \(h.queue)): \(h.perFlow) per flow, \(h.packets) packets and \(h.bytes) bytes in all, "
                + "at most \(Double(c.holdTime.nanoseconds) / 1e9) s\(h.time == nil ? " (the longest its discovery can take)" : "")"
            : "off: first packets are dropped until their tunnel is up"))
        if let ike = c.ike {
            let auth = switch ike.authentication {
            case .psk: "psk"
            case .peerKeys: "psk per peer"
            case .pubkey: "certificates"
            }
            lines.append("ike:            strongSwan at \(ike.vici), \(auth), respond \(ike.respond)")
        } else {
            lines.append("ike:            none (discoveries are reported, no tunnel is started)")
        }
        lines.append("control socket: \(c.controlSocket)")
        lines.append("metrics:        \(c.metrics.map { "http://\($0)/metrics" } ?? "off")")
        lines.append("capture:        \(c.capture.map { "\($0), then \($0).1 at \(c.captureMaxBytes) bytes" } ?? "off")")
        self.lines = lines
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
