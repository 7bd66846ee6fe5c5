import ArgumentParser
import TEDModel

/// `ted classify`: which policy entry a packet matches.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Show which policy entry matches a packet (first match wins).",
        discussion: """
            As initiator the packet is outbound (source = local side); as responder it is a probe's \
            packet summary, matched mirrored (its destination is local).
            """)

    @Option(help: "The configuration file (YAML).")
    var config = defaultConfigPath

    @Option(help: "A packet: \"<protocol> <src>[:<port>] <dst>[:<port>]\", IPv6 in brackets.")
    var packet: String?

    @Option(help: "A file of packets, one per line in the --packet syntax (# comments); one result line each.")
    var packets: String?

    @Option(name: .customLong("as"), help: "The role to classify for: initiator or responder.")
    var role: Role = .initiator

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard (packet == nil) != (packets == nil) else { throw ValidationError("give either --packet or --packets") }
        if let packet { _ = try parsePacket(packet) }
    }

    func run() throws {
        let configuration = try loadConfiguration(config)
        if let packets {
            let classifier = PacketFileClassifier(path: packets, policy: CompiledPolicy(configuration.policy), role: role, json: json)
            if try !classifier.run() { throw ExitCode(1) }
            return
        }
        let packet = try parsePacket(packet ?? "")
        let match = configuration.policy.firstMatch(packet, as: role)
        if json {
            guard let match else {
                print(JSON.object([("match", .bool(false)), ("role", .string(role.rawValue))]).rendered)
                return
            }
            print(JSON.object([
                ("match", .bool(true)), ("role", .string(role.rawValue)), ("index", .int(match.index)),
                ("line", match.line.map { .int($0) } ?? .null), ("entry", .string(match.text)),
                ("action", .string(match.entry.action.rawValue)),
            ]).rendered)
            return
        }
        guard let match else {
            print("no entry matches \(packet) as \(role): not protected")
            return
        }
        let at = match.line.map { "\(config):\($0)" } ?? config
        print("entry \(match.index) (\(at)): \(match.text)")
        print(match.entry.action == .permit ? "action: permit (protected)" : "action: deny (not protected)")
    }
}
