import Logging
import NIOConcurrencyHelpers
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// strongSwan through VICI: what the IKE hand-off needs, as `load-conn`, `load-shared`,
/// `initiate`, `unload-conn` and the `ike-updown`/`child-updown`/`child-rekey` events.
public final class ViciController: IKEController {
    private let socketPath: String
    private let logger: Logger
    private let connections = NIOLockedValueBox<(commands: ViciClient?, events: ViciClient?)>((nil, nil))

    /// Seconds a command may take before it fails (and its connection is dropped).
    private let commandTimeout: Int

    public init(socketPath: String, logger: Logger, commandTimeout: Int = 30) {
        self.socketPath = socketPath
        self.logger = logger
        self.commandTimeout = commandTimeout
    }

    /// Runs one command on the command connection, opened on first use (charon may start
    /// after ted). Any error drops the connection, so the next command reconnects and a
    /// reply that comes late can never be read as the answer to another command.
    private func command<T>(_ body: (ViciClient) async throws -> T) async throws -> T {
        let client: ViciClient
        if let existing = connections.withLockedValue({ $0.commands }) {
            client = existing
        } else {
            client = try ViciClient(socketPath: socketPath)
            connections.withLockedValue { $0.commands = client }
        }
        do {
            return try await body(client)
        } catch {
            connections.withLockedValue { if $0.commands === client { $0.commands = nil } }
            client.shutdownConnection()
            throw error
        }
    }

    private func request(_ name: String, _ message: ViciMessage) async throws {
        try await command { try await $0.request(name, message, timeoutSeconds: commandTimeout) }.requireSuccess(name)
    }

    public func loadSharedKey(_ key: SharedKey) async throws {
        try await request("load-shared", Self.sharedKeyMessage(key))
    }

    public func unloadSharedKey(id: String) async throws {
        var message = ViciMessage()
        message.add("id", id)
        try await request("unload-shared", message)
    }

    public func sharedKeyIDs() async throws -> [String] {
        try await command { try await $0.request("get-shared", ViciMessage(), timeoutSeconds: commandTimeout) }.list("keys") ?? []
    }

    /// `load-shared` for one key; `owners` empty means any identity (charon's own rule).
    static func sharedKeyMessage(_ key: SharedKey) -> ViciMessage {
        var message = ViciMessage()
        message.add("id", key.id)
        message.add("type", "IKE")
        message.add("data", key.secret)
        message.add("owners", list: key.owners)
        return message
    }

    /// `load-cert` and `load-key` take the files' contents (PEM or DER), never a path.
    public func loadCertificates(_ files: CertificateFiles) async throws -> IKECertificates {
        try await request("load-cert", Self.certificateMessage(files.caCertificate, flag: "CA"))
        try await request("load-cert", Self.certificateMessage(files.certificate, flag: "NONE"))
        var key = ViciMessage()
        key.add("type", "any")
        key.add("data", bytes: files.privateKey)
        try await request("load-key", key)
        return IKECertificates(certificate: files.certificate, caCertificate: files.caCertificate)
    }

    public func loadConnection(_ connection: IKEConnection, authentication: IKEAuthentication) async throws {
        try await request("load-conn", Self.connectionMessage(connection, authentication: authentication))
    }

    static func certificateMessage(_ data: [UInt8], flag: String) -> ViciMessage {
        var message = ViciMessage()
        message.add("type", "X509")
        message.add("flag", flag)
        message.add("data", bytes: data)
        return message
    }

    /// The `load-conn` request for a connection. With certificates the remote round names
    /// the peer's identity (or `%any` for the responder connection) and the one CA its
    /// certificate must chain to, so a certificate of another identity or another CA fails
    /// IKE_AUTH.
    static func connectionMessage(_ connection: IKEConnection, authentication: IKEAuthentication) -> ViciMessage {
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
            local.add("id", connection.localID)
            remote.add("auth", "psk")
            remote.add("id", connection.remoteID)
        case .pubkey(let certificates):
            local.add("auth", "pubkey")
            local.add("id", connection.localID)
            local.add("certs", byteList: [certificates.certificate])
            remote.add("auth", "pubkey")
            remote.add("id", connection.remoteID)
            remote.add("cacerts", byteList: [certificates.caCertificate])
        }

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
        return message
    }

    /// Starts IKE and returns at once (`timeout` -1): no initiate holds other commands up;
    /// the outcome arrives as `child-updown`, or not at all (the hand-off's deadline).
    public func initiate(child: String, ike: String) async throws {
        var message = ViciMessage()
        message.add("child", child)
        message.add("ike", ike)
        message.add("timeout", "-1")
        message.add("init-limits", "no")
        try await request("initiate", message)
    }

    public func unloadConnection(_ name: String) async throws {
        var message = ViciMessage()
        message.add("name", name)
        try await request("unload-conn", message)
    }

    /// Terminates a connection's IKE SA (and its children) without waiting.
    public func terminate(ike name: String) async throws {
        var message = ViciMessage()
        message.add("ike", name)
        message.add("timeout", "-1")
        try await request("terminate", message)
    }

    public func connectionNames() async throws -> [String] {
        try await command { try await $0.request("get-conns", ViciMessage(), timeoutSeconds: commandTimeout) }.list("conns") ?? []
    }

    public func childSAs() async throws -> [IKEEvent] {
        let listed = try await command { try await $0.stream("list-sas", event: "list-sa", timeoutSeconds: commandTimeout) }
        return listed.flatMap { Self.children(of: $0, up: true) }
    }

    public func events() async throws -> AsyncStream<IKEEvent> {
        let client = try ViciClient(socketPath: socketPath)
        connections.withLockedValue { $0.events = client }
        let raw = client.subscribe(["ike-updown", "child-updown", "child-rekey", "log"])
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
                IKEEvent(kind: up ? .ikeUp : .ikeDown, connection: connection, remoteAddress: sa["remote-host"], ikeID: sa["uniqueid"])
            }
        }
        if name == "child-rekey" { return rekeys(of: message) }
        if name == "log" { return installFailure(message).map { [$0] } ?? [] }
        return children(of: message, up: up)
    }

    /// What charon 5.9 logs when this host cannot install a child SA it negotiated (its
    /// policies, the route libipsec needs, or its SAs): the one thing in the log stream
    /// ted acts on. The route line names the selectors.
    static let installFailureLines = ["error installing route with policy", "unable to install IPsec policies",
                                      "unable to install inbound and outbound IPsec SA"]

    /// A `log` event about one of ted's IKE SAs that says a child SA could not be installed.
    static func installFailure(_ message: ViciMessage) -> IKEEvent? {
        guard let connection = message["ikesa-name"], connection.hasPrefix("ted-"), let line = message["msg"],
              installFailureLines.contains(where: line.hasPrefix) else { return nil }
        return IKEEvent(kind: .childInstallFailed, connection: connection, remoteAddress: nil,
                        ikeID: message["ikesa-uniqueid"], reason: line)
    }

    /// `child-rekey` names each rekeyed child by its configuration name, with `old` and
    /// `new` sections; a child SA's unique name (as in `child-updown`) is `<name>-<uniqueid>`.
    static func rekeys(of message: ViciMessage) -> [IKEEvent] {
        message.sections.flatMap { connection, sa in
            (sa.section("child-sas")?.sections ?? []).compactMap { _, details in
                guard let old = details.section("old"), let new = details.section("new"),
                      let oldName = uniqueName(old), let newName = uniqueName(new) else { return nil }
                return IKEEvent(kind: .childRekey, connection: connection, remoteAddress: sa["remote-host"], child: newName,
                                childConfig: new["name"], localTS: new.list("local-ts") ?? [], remoteTS: new.list("remote-ts") ?? [],
                                previousChild: oldName, ikeID: sa["uniqueid"])
            }
        }
    }

    private static func uniqueName(_ child: ViciMessage) -> String? {
        guard let name = child["name"], let id = child["uniqueid"] else { return nil }
        return "\(name)-\(id)"
    }

    /// One child event per child SA of each IKE SA section.
    static func children(of message: ViciMessage, up: Bool) -> [IKEEvent] {
        message.sections.flatMap { connection, sa in
            (sa.section("child-sas")?.sections ?? []).map { child, details in
                IKEEvent(kind: up ? .childUp : .childDown, connection: connection, remoteAddress: sa["remote-host"],
                         child: child, childConfig: details["name"], localTS: details.list("local-ts") ?? [], remoteTS: details.list("remote-ts") ?? [],
                         ikeID: sa["uniqueid"])
            }
        }
    }
}
