import ArgumentParser
import TEDConfig
import TEDDaemon
import TEDEngine
import TEDModel

/// `ted demo`: an initiator and three responders on loopback with built-in policies.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run an initiator and four responders on loopback and show several discoveries side by side.")

    @Flag(help: "Print one JSON object per discovery.")
    var json = false

    /// A responder site: its configuration and the inside networks "behind" it.
    struct Site {
        let name: String
        let yaml: String
        let networks: [AddressPattern]
    }

    static let initiatorYAML = """
        identity: 127.0.0.1
        policy:
          - remark gwA protects site A (198.18.1.0/24, 2001:db8:1::/48) towards every other site
          - permit ip 198.18.1.0/24 198.18.0.0/16
          - permit ip 2001:db8:1::/48 2001:db8::/32
        discovery: { retries: 1, timeout: 150ms }
        """

    static let sites = [
        Site(name: "gwE", yaml: """
            identity: 127.0.0.4
            policy:
              - remark gwE mirrors gwA (the plain case), any protocol and port, the whole other side
              - permit ip 198.18.4.0/24 198.18.0.0/16
            """, networks: [AddressPattern("198.18.4.0/24")!]),
        Site(name: "gwB", yaml: """
            identity: 127.0.0.2
            policy:
              - remark gwB protects only HTTPS and DNS of site B
              - permit tcp 198.18.2.0/24 eq https 198.18.0.0/16
              - permit udp 198.18.2.0/24 eq domain 198.18.1.0/24
            """, networks: [AddressPattern("198.18.2.0/24")!]),
        Site(name: "gwC", yaml: """
            identity: 127.0.0.3
            policy:
              - remark gwC talks only to the first 16 hosts of site A
              - permit ip 198.18.3.0/24 198.18.1.0/28
            """, networks: [AddressPattern("198.18.3.0/24")!]),
        Site(name: "gwD", yaml: """
            identity: ::1
            policy:
              - remark gwD protects DNS of an IPv6 site
              - permit udp 2001:db8:2::/48 eq 53 2001:db8::/32
            """, networks: [AddressPattern("2001:db8:2::/48")!]),
    ]

    static let packets = [
        "tcp 198.18.1.10:40000 198.18.4.40:80",
        "tcp 198.18.1.10:40000 198.18.2.20:443",
        "udp 198.18.1.10:5353 198.18.2.53:53",
        "tcp 198.18.1.11:40001 198.18.2.21:443",
        "tcp 198.18.1.5:40000 198.18.3.30:22",
        "tcp 198.18.1.100:40000 198.18.3.30:22",
        "udp [2001:db8:1::10]:5353 [2001:db8:2::20]:53",
        "tcp 198.18.1.10:40000 198.18.2.20:80",
    ]

    func run() async throws {
        let logger = makeLogger(label: "ted.demo", level: .warning)
        func parse(_ yaml: String, _ name: String) throws -> Configuration {
            do { return try ConfigurationLoader.parse(yaml, path: "<built-in \(name)>") } catch {
                printError(error.description)
                throw ExitCode(2)
            }
        }
        var responders: [(site: Site, identity: IPAddress, node: TEDNode)] = []
        for site in Self.sites {
            let config = try parse(site.yaml, site.name)
            let node = try await TEDNode.start(configuration: config, roles: .responder,
                                               bind: Endpoint(address: config.identity.family == .v4 ? config.identity : .zero(.v6), port: 0),
                                               advertiseBoundPort: true, logger: logger)
            responders.append((site, config.identity, node))
        }
        let initiatorConfig = try parse(Self.initiatorYAML, "gwA")
        // A dual-stack socket: it reaches the IPv4 and the IPv6 responders.
        let initiator = try await TEDNode.start(configuration: initiatorConfig, roles: .initiator,
                                                bind: Endpoint(address: .zero(.v6), port: 0),
                                                advertiseBoundPort: true, logger: logger)
        if !json {
            print("ted demo: initiator gwA (127.0.0.1) and responders gwE (127.0.0.4), gwB (127.0.0.2), gwC (127.0.0.3), gwD (::1), all on loopback.")
            print("Loopback has no routed path, so each probe is sent to the gateway that would sit on the packet's path.\n")
            for line in Self.initiatorYAML.split(separator: "\n") where line.contains("permit") { print("gwA \(trimmed(line, " -"))") }
            for (site, _, _) in responders {
                for line in site.yaml.split(separator: "\n") where line.contains("permit") { print("\(site.name) \(trimmed(line, " -"))") }
            }
            print("")
        }
        var v3Tunnels = 0, v2Tunnels = 0
        for text in Self.packets {
            let packet = try Packet(parsing: text)
            guard let (site, address, node) = responders.first(where: {
                $0.site.networks.contains { $0.contains(packet.destination) }
            }) else { continue }
            let outcome = await initiator.discover(packet, to: (address, node.port))
            if json {
                print(JSON.object([("packet", .string(text)), ("path", .string(site.name)), ("result", outcome.json)]).rendered)
            } else {
                let row = DemoRow(packet: packet, site: site.name, outcome: outcome)
                print(row.lines.joined(separator: "\n"), "\n")
                if case .discovered = outcome { v3Tunnels += 1 }
                if row.v2Works { v2Tunnels += 1 }
            }
        }
        if !json {
            print("TED v3 gave a tunnel to \(v3Tunnels) of \(Self.packets.count) packets (no responder protects the others), TED v2 to \(v2Tunnels).")
            print("Real tunnels (strongSwan, XFRM, network namespaces; root): scripts/e2e.sh")
        }
        await initiator.stop()
        for (_, _, node) in responders { await node.stop() }
    }
}

/// One discovery of the demo, with what TED v2 would have made of it.
struct DemoRow {
    let lines: [String]
    /// Whether TED v2's half-proxy merge would have given a tunnel for this packet.
    let v2Works: Bool

    init(packet: Packet, site: String, outcome: DiscoveryOutcome) {
        var lines = ["packet        \(packet)   (on the path: \(site))"]
        var v2Works = false
        switch outcome {
        case .discovered(let d, let cached):
            lines.append("responder     \(d.peer)\(cached ? "   (from the cache, no probe)" : "   rtt \(format3(d.rtt.milliseconds)) ms")")
            lines.append("offers        \(d.entries[d.chosenEntry])")
            lines.append("TED v3        tunnel \(d.intersection)")
            if let local = d.localRule.entry.proxy(as: .initiator, family: packet.family) {
                switch HalfProxyMerge.merge(initiator: local, responder: d.entries[d.chosenEntry], packet: packet) {
                case .success(let merged):
                    lines.append("TED v2        would work: \(merged)")
                    v2Works = true
                case .failure(let why): lines.append("TED v2        would FAIL: \(why)")
                }
            }
        case .failed(let f, _):
            lines.append("TED v3        no tunnel: \(f.reason) after \(f.attempts) probe(s) (the responder does not protect this flow, so it stays silent)")
        case .notProtected:
            lines.append("TED v3        gwA's policy does not protect this packet")
        case .cancelled:
            lines.append("TED v3        cancelled")
        }
        self.lines = lines
        self.v2Works = v2Works
    }
}
