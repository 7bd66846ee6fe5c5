import ArgumentParser
import TEDConfig
import TEDDaemon
import TEDModel

/// `ted probe`: one discovery from the command line, like dig.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Send one TED probe for a packet and show who answers and what the tunnel would protect.",
        discussion: """
            The probe goes to the packet's destination (where the responder on its path intercepts it), \
            or straight to --to. Exit status: 0 discovered, 1 no answer or no usable intersection, \
            2 usage or configuration error.
            """)

    @Option(help: "The configuration file (YAML): identity and policy of this gateway.")
    var config = defaultConfigPath

    @Option(help: "The packet needing protection: \"<protocol> <src>[:<port>] <dst>[:<port>]\".")
    var packet: String

    @Option(help: "Send the probe to ADDR[:PORT] instead of the packet's destination (port default: probe-port).")
    var to: String?

    @Option(help: "Seconds to wait in all, spread over the configured retries (default: the configured schedule).")
    var timeout: Double?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        _ = try parsePacket(packet)
        if let to, Endpoint(to, defaultPort: ISAKMP.port) == nil {
            throw ValidationError("--to \"\(to)\": expected ADDR, ADDR:PORT or [ADDR6]:PORT")
        }
        if let timeout, !(timeout > 0 && timeout <= 600) {
            throw ValidationError("--timeout must be between 0 and 600 seconds")
        }
    }

    func run() async throws {
        let packet = try parsePacket(packet)
        var configuration = try loadConfiguration(config)
        let target = to.flatMap { Endpoint($0, defaultPort: configuration.probePort) }
        if let timeout {
            let retries = configuration.discovery.retries
            configuration.discovery.timeout = timeout / Double((1 << (retries + 1)) - 1)
        }
        let node = try await TEDNode.start(
            configuration: configuration, roles: .initiator,
            bind: Endpoint(address: configuration.identity, port: 0), advertiseBoundPort: true,
            logger: makeLogger(label: "ted.probe", level: .warning))
        let outcome = await node.discover(packet, to: target.map { ($0.address, $0.port) }, explicit: true)
        await node.stop()
        let child = outcome.child(under: configuration.policy)
        print(json ? outcome.json(child: child).rendered : outcome.lines(child: child).joined(separator: "\n"))
        if case .discovered = outcome { return }
        throw ExitCode(1)
    }
}
