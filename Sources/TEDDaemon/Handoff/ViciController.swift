import Logging
import NIOConcurrencyHelpers
import TEDConfig
import TEDVici

#if canImport(Glibc)
import Glibc
#endif

/// strongSwan through VICI: what the IKE hand-off needs, as `load-conn`, `load-shared`,
/// `initiate`, `unload-conn` and the `ike-updown`/`child-updown` events.
public final class ViciController: IKEController {
    private let socketPath: String
    private let logger: Logger
    private let connections = NIOLockedValueBox<(commands: ViciClient?, events: ViciClient?)>((nil, nil))

    public init(socketPath: String, logger: Logger) {
        self.socketPath = socketPath
        self.logger = logger
    }

    /// The command connection, opened on first use (charon may start after ted).
    private func client() throws -> ViciClient {
        if let existing = connections.withLockedValue({ $0.commands }) { return existing }
        let created = try ViciClient(socketPath: socketPath)
        connections.withLockedValue { $0.commands = created }
        return created
    }

    public func loadSharedKey(_ secret: String) async throws {
        var message = ViciMessage()
        message.add("id", "ted-psk")
        message.add("type", "IKE")
        message.add("data", secret)
        message.add("owners", list: [])
        try await client().request("load-shared", message).requireSuccess("load-shared")
    }

    public func loadCertificates(certificate: String, privateKey: String, caCertificate: String) async throws {
        for (path, flag) in [(caCertificate, "CA"), (certificate, "NONE")] {
            var message = ViciMessage()
            message.add("type", "X509")
            message.add("flag", flag)
            message.add("data", bytes: try Self.read(path))
            try await client().request("load-cert", message).requireSuccess("load-cert \(path)")
        }
        var key = ViciMessage()
        key.add("type", "any")
        key.add("data", bytes: try Self.read(privateKey))
        try await client().request("load-key", key).requireSuccess("load-key \(privateKey)")
    }

    public func loadConnection(_ connection: IKEConnection, authentication: IKEAuthentication) async throws {
        var children = ViciMessage()
        for configured in connection.children {
            var child = ViciMessage()
            child.add("local_ts", list: configured.localTS)
            child.add("remote_ts", list: configured.remoteTS)
            child.add("esp_proposals", list: connection.espProposals)
            child.add("mode", "tunnel")
            child.add("start_action", "none")
            child.add("close_action", "none")
            children.add(configured.name, section: child)
        }

        var local = ViciMessage(), remote = ViciMessage()
        switch authentication {
        case .psk:
            local.add("auth", "psk")
            remote.add("auth", "psk")
        case .pubkey(let certificate):
            local.add("auth", "pubkey")
            local.add("certs", list: [certificate])
            remote.add("auth", "pubkey")
        }
        local.add("id", connection.localID)
        remote.add("id", connection.remoteID)

        var body = ViciMessage()
        body.add("version", "2")
        body.add("local_addrs", list: [connection.localAddress])
        body.add("remote_addrs", list: [connection.remoteAddress])
        body.add("proposals", list: connection.proposals)
        body.add("mobike", "no")
        body.add("dpd_delay", "30s")
        body.add("local-ted", section: local)
        body.add("remote-ted", section: remote)
        body.add("children", section: children)
        var message = ViciMessage()
        message.add(connection.name, section: body)
        try await client().request("load-conn", message).requireSuccess("load-conn \(connection.name)")
    }

    public func initiate(child: String, ike: String, timeoutMilliseconds: Int) async throws {
        var message = ViciMessage()
        message.add("child", child)
        message.add("ike", ike)
        message.add("timeout", "\(timeoutMilliseconds)")
        message.add("init-limits", "no")
        let seconds = timeoutMilliseconds / 1000 + 5
        try await client().request("initiate", message, timeoutSeconds: seconds).requireSuccess("initiate \(child)")
    }

    public func unloadConnection(_ name: String) async throws {
        var message = ViciMessage()
        message.add("name", name)
        try await client().request("unload-conn", message).requireSuccess("unload-conn \(name)")
    }

    public func events() async throws -> AsyncStream<IKEEvent> {
        let client = try ViciClient(socketPath: socketPath)
        connections.withLockedValue { $0.events = client }
        let raw = client.subscribe(["ike-updown", "child-updown"])
        return AsyncStream { continuation in
            let task = Task {
                for await (name, message) in raw {
                    for event in Self.events(name: name, message: message) { continuation.yield(event) }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func close() async {
        let (commands, events) = connections.withLockedValue { current in
            defer { current = (nil, nil) }
            return current
        }
        events?.shutdownConnection()
        _ = commands
    }

    /// `ike-updown` / `child-updown` carry `up = yes` when up and one section per IKE SA,
    /// named after its connection.
    static func events(name: String, message: ViciMessage) -> [IKEEvent] {
        let up = message["up"] == "yes"
        if name == "ike-updown" {
            return message.sections.map { connection, sa in
                IKEEvent(kind: up ? .ikeUp : .ikeDown, connection: connection, remoteAddress: sa["remote-host"])
            }
        }
        return message.sections.flatMap { connection, sa in
            (sa.section("child-sas")?.sections ?? []).map { child, details in
                IKEEvent(kind: up ? .childUp : .childDown, connection: connection, remoteAddress: sa["remote-host"],
                         child: child, localTS: details.list("local-ts") ?? [], remoteTS: details.list("remote-ts") ?? [])
            }
        }
    }

    private static func read(_ path: String) throws -> [UInt8] {
        guard let bytes = readFileBytes(path, maxBytes: 1 << 20) else { throw ViciClient.Failure("cannot read \(path)") }
        return bytes
    }
}
