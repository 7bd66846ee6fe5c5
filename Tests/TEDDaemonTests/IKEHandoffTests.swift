import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
import TEDConfig
@testable import TEDEngine
import TEDModel
import TEDWire
@testable import TEDDaemon
@testable import TEDVici

/// An IKE daemon that records what it is asked and answers as a test scripts it.
final class FakeIKEController: IKEController, @unchecked Sendable {
    private let lock = Mutex<State>(State())
    struct State {
        var calls: [String] = []
        var failInitiate = false
        var unreachable = false
        var childSAs: [IKEEvent] = []
        var names: [String] = []
        var keyIDs: [String] = []
        var connections: [IKEConnection] = []
        var continuation: AsyncStream<IKEEvent>.Continuation?
    }

    var calls: [String] { lock.withLock { $0.calls } }
    func set(_ change: (inout State) -> Void) { lock.withLock { change(&$0) } }
    private func record(_ call: String) throws {
        try lock.withLock { state in
            if state.unreachable { throw ViciUnreachable() }
            state.calls.append(call)
        }
    }
    struct ViciUnreachable: Error {}

    func loadSharedKey(_ key: SharedKey) async throws { try record("load-shared") }
    func unloadSharedKey(id: String) async throws { try record("unload-shared \(id)") }
    func sharedKeyIDs() async throws -> [String] {
        try record("get-shared")
        return lock.withLock { $0.keyIDs }
    }
    func loadCertificates(_ files: CertificateFiles) async throws -> IKECertificates {
        try record("load-cert")
        return IKECertificates(certificate: files.certificate, caCertificate: files.caCertificate)
    }
    func loadConnection(_ connection: IKEConnection, authentication: IKEAuthentication) async throws {
        try record("load-conn \(connection.name)")
        lock.withLock { $0.connections.append(connection) }
    }
    var connections: [IKEConnection] { lock.withLock { $0.connections } }
    func initiate(child: String, ike: String) async throws {
        try record("initiate \(ike)")
        if lock.withLock({ $0.failInitiate }) { throw ViciUnreachable() }
    }
    func unloadConnection(_ name: String) async throws { try record("unload-conn \(name)") }
    func terminate(ike name: String) async throws { try record("terminate \(name)") }
    func connectionNames() async throws -> [String] {
        try record("get-conns")
        return lock.withLock { $0.names }
    }
    func childSAs() async throws -> [IKEEvent] {
        try record("list-sas")
        return lock.withLock { $0.childSAs }
    }
    func events() async throws -> AsyncStream<IKEEvent> {
        try record("subscribe")
        let (stream, continuation) = AsyncStream<IKEEvent>.makeStream()
        lock.withLock { $0.continuation = continuation }
        return stream
    }
    func send(_ event: IKEEvent) { _ = lock.withLock { $0.continuation }?.yield(event) }
    /// charon goes away: the event stream ends.
    func vanish() {
        let continuation = lock.withLock { state -> AsyncStream<IKEEvent>.Continuation? in
            state.unreachable = true
            return state.continuation
        }
        continuation?.finish()
    }
    func close() async {}
}

@Suite struct IKEHandoffTests {
    static let logger = quietLogger
    static let yaml = """
        identity: 127.0.0.1
        policy:
          - permit ip 198.18.1.0/24 198.18.0.0/15
        peers: [198.51.100.0/24]
        ike: { vici: /nonexistent, psk: "a test key of enough bytes", initiate-timeout: TIMEOUT, max-connections-per-peer: 1 }
        """

    /// `initiateTimeout` long by default, so a loaded machine cannot expire a tunnel a test
    /// is about to bring up; the expiry test sets it short.
    func handoff(_ fake: FakeIKEController, initiateTimeout: Double = 60, yaml: String = Self.yaml) async throws -> (IKEHandoff, TEDNode) {
        let configuration = try ConfigurationLoader.parse(yaml.replacingOccurrences(of: "TIMEOUT", with: "\(initiateTimeout)"),
                                                          path: "test.yaml")
        // On loopback whatever the identity (`higherGateway`'s is not this host's).
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: IPAddress("127.0.0.1")!, port: 0),
                                           logger: Self.logger)
        let handoff = IKEHandoff(controller: fake, configuration: configuration, options: try #require(configuration.ike),
                                 logger: Self.logger)
        try await handoff.start(node: node)
        try await until { await handoff.isConnected }
        return (handoff, node)
    }

    static let child = TrafficSelector(proto: .any, local: AddressPattern("198.18.1.0/24")!, remote: AddressPattern("198.18.2.0/24")!)

    func discovery(peer: String = "198.51.100.2") -> Discovery {
        let rule = PolicyRule(index: 1, entry: try! ACLParser.parseLine("permit ip 198.18.1.0/24 198.18.0.0/15")!, text: "")
        let intersection = Proxy(proto: .any, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!, ports: .all),
                                 responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!, ports: .all))!
        return Discovery(peer: Identity(address: IPAddress(peer)!, port: 500), entries: [intersection], chosenEntry: 0,
                         intersection: intersection, packet: try! Packet(parsing: "udp 198.18.1.10:1 198.18.2.20:53"),
                         localRule: rule, rtt: .milliseconds(1), attempts: 1, responseSource: IPAddress(peer)!,
                         responseSourcePort: 500)
    }

    /// Hands the test's discovery off and waits for its `initiate`; the connection's name.
    func initiated(_ handoff: IKEHandoff, _ fake: FakeIKEController) async throws -> String {
        handoff.discovered(discovery())
        let name = IKEHandoff.connectionName(peer: IPAddress("198.51.100.2")!, child: Self.child)
        try await until { fake.calls.contains("initiate \(name)") }
        return name
    }

    func until(_ condition: () async -> Bool) async throws {
        for _ in 0..<1000 {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met within 10 s")
    }

    @Test func oneConnectionPerPeerAndIntersectionThenUpOnTheChildEvent() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        handoff.discovered(discovery())
        let name = try await initiated(handoff, fake)
        #expect(fake.calls.filter { $0 == "load-conn \(name)" }.count == 1)
        #expect(fake.calls.filter { $0 == "initiate \(name)" }.count == 1)
        #expect(await handoff.tunnels().map(\.state) == ["connecting"])
        fake.send(IKEEvent(kind: .childUp, connection: name, remoteAddress: "198.51.100.2", child: "\(name)-1"))
        try await until { await handoff.tunnels().map(\.state) == ["up"] }
        #expect(node.metrics.value("ted_tunnels") == 1, "ted_tunnels counts the tunnels up")
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "initiated")]) == 1)
        fake.send(IKEEvent(kind: .childDown, connection: name, remoteAddress: "198.51.100.2", child: "\(name)-1"))
        try await until { fake.calls.contains("unload-conn \(name)") }
        #expect(await handoff.tunnels().isEmpty)
    }

    /// charon may put a connection's child under another connection's IKE SA (equal peer
    /// settings): the child's configuration name says whose it is.
    @Test func aChildUnderAnotherIKESABelongsToItsOwnConnection() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        fake.send(IKEEvent(kind: .childUp, connection: "ted-other", remoteAddress: "198.51.100.2", child: "\(name)-4",
                           childConfig: name))
        try await until { await handoff.tunnels().map(\.state) == ["up"] }
        fake.send(IKEEvent(kind: .childDown, connection: "ted-other", remoteAddress: "198.51.100.2", child: "\(name)-4",
                           childConfig: name))
        try await until { await handoff.tunnels().isEmpty }
    }

    /// The responder's IKE SAs with every peer share one connection (`ted-responder`): one
    /// peer's IKE SA going down takes its own child SAs' kernel state, never another peer's.
    @Test func onePeersIKESAGoingDownLeavesAnotherPeersChildren() async throws {
        let fake = FakeIKEController()
        let configuration = try ConfigurationLoader.parse(Self.yaml.replacingOccurrences(of: "TIMEOUT", with: "60"), path: "test.yaml")
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: configuration.identity, port: 0),
                                           logger: Self.logger)
        defer { Task { await node.stop() } }
        let downs = Mutex<[String]>([])
        let handoff = IKEHandoff(controller: fake, configuration: configuration, options: try #require(configuration.ike),
                                 logger: Self.logger,
                                 childHooks: .init(up: { _, _ in }, down: { child in downs.withLock { $0.append(child) } }))
        try await handoff.start(node: node)
        try await until { await handoff.isConnected }
        fake.send(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.1", child: "ted-r1-v4-3", ikeID: "1"))
        fake.send(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.3", child: "ted-r2-v4-4", ikeID: "2"))
        fake.send(IKEEvent(kind: .ikeDown, connection: "ted-responder", remoteAddress: "198.51.100.1", ikeID: "1"))
        try await until { downs.withLock { !$0.isEmpty } }
        #expect(downs.withLock { $0 } == ["ted-r1-v4-3"])
        // An IKE SA down without an id (an older charon) still takes its connection's children.
        fake.send(IKEEvent(kind: .ikeDown, connection: "ted-responder", remoteAddress: "198.51.100.3"))
        try await until { downs.withLock { $0.count == 2 } }
        #expect(downs.withLock { $0 } == ["ted-r1-v4-3", "ted-r2-v4-4"])
    }

    /// Past the per-peer cap a discovery starts no connection; `ted status` shows why.
    /// The responder's children are the permits' own shares: a deny above a permit leaves
    /// its part out of every child (one child config per piece), an entry nothing above
    /// overlaps keeps its one child.
    @Test func theResponderChildrenLeaveOutWhatEarlierEntriesOwn() async throws {
        let fake = FakeIKEController()
        let yaml = Self.yaml.replacingOccurrences(of: "  - permit ip 198.18.1.0/24 198.18.0.0/15", with: """
              - permit udp 198.18.9.0/24 198.18.0.0/16
              - deny ip 198.18.1.0/24 198.18.2.128/25
              - permit ip 198.18.1.0/24 198.18.2.0/24
            """)
        let (handoff, node) = try await handoff(fake, yaml: yaml)
        let responder = try #require(fake.connections.first { $0.name == "ted-responder-p1" })
        #expect(responder.children.map(\.name) == ["ted-r1-v4", "ted-r3-v4-1"])
        #expect(responder.children.map(\.localTS) == [["198.18.9.0/24[udp]"], ["198.18.1.0/24"]])
        #expect(responder.children.map(\.remoteTS) == [["198.18.0.0/16[udp]"], ["198.18.2.0/25"]])
        await handoff.stop()
        await node.stop()
    }

    @Test func handOffsPastTheCapAreRefusedAndShown() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        handoff.discovered(discovery())
        let first = IKEHandoff.connectionName(peer: IPAddress("198.51.100.2")!, child: Self.child)
        try await until { fake.calls.contains("initiate \(first)") }
        var other = discovery()
        let narrower = Proxy(proto: .udp, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!),
                             responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!))!
        other = Discovery(peer: other.peer, entries: [narrower], chosenEntry: 0, intersection: narrower, packet: other.packet,
                          localRule: other.localRule, rtt: other.rtt, attempts: 1, responseSource: other.responseSource,
                          responseSourcePort: 500)
        handoff.discovered(other)
        try await until { await handoff.tunnels().contains { $0.state.hasPrefix("capped") } }
        #expect(fake.calls.filter { $0.hasPrefix("load-conn ted-198") }.count == 1)
        #expect(await handoff.tunnels().map(\.state) == ["connecting", "capped: 1 connections to this peer"])
    }

    /// A child this host cannot install (charon logs why) is not the peer's failure: ted
    /// shows it with charon's reason and never refutes the peer; after initiate-timeout the
    /// record goes, with its connection, so a later packet tries again.
    @Test func aChildThisHostCannotInstallLeavesItsPeerUnrefuted() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake, initiateTimeout: 0.5)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        // charon put the child under the IKE SA of another connection to the same peer: the
        // selectors of its route line say which tunnel failed.
        let route = "error installing route with policy 198.18.1.0/24 === 198.18.2.0/24 out"
        fake.send(IKEEvent(kind: .childInstallFailed, connection: "ted-198-51-100-2-other", remoteAddress: nil, reason: route))
        try await until { await handoff.tunnels().first?.state.hasPrefix("install failed") == true }
        #expect(await handoff.tunnels().map(\.state) == ["install failed: \(route)"])
        try await until { fake.calls.contains("unload-conn \(name)") }
        #expect(await handoff.tunnels().isEmpty)
        #expect(await node.snapshot().initiator?.refuted.isEmpty == true, "a local failure refutes nobody")
        // A responder child (no record of ours) is shown too, under its IKE SA's peer.
        fake.send(IKEEvent(kind: .ikeUp, connection: "ted-responder-p1", remoteAddress: "198.51.100.3", ikeID: "9"))
        fake.send(IKEEvent(kind: .childInstallFailed, connection: "ted-responder-p1", remoteAddress: nil, ikeID: "9", reason: route))
        try await until { await !handoff.tunnels().isEmpty }
        #expect(await handoff.tunnels().map { "\($0.name) \($0.peer) \($0.state)" } == ["ted-responder-p1 198.51.100.3 install failed: \(route)"])
    }

    @Test func aTunnelThatDoesNotComeUpInTimeIsTerminatedAndUnloaded() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake, initiateTimeout: 0.3)
        defer { Task { await node.stop() } }
        handoff.discovered(discovery())
        let name = IKEHandoff.connectionName(peer: IPAddress("198.51.100.2")!, child: Self.child)
        try await until { fake.calls.contains("unload-conn \(name)") }
        #expect(fake.calls.contains("terminate \(name)"))
        #expect(await handoff.tunnels().isEmpty)
        // The peer did not prove its claim: refuted for that intersection (negative-ttl).
        try await until { await node.snapshot().initiator?.refuted.map(\.peer) == [IPAddress("198.51.100.2")!] }
        #expect(await node.snapshot().initiator?.refuted.first?.intersection == discovery().intersection)
        // The next discovery of the same pair tries again.
        handoff.discovered(discovery())
        try await until { fake.calls.filter { $0 == "initiate \(name)" }.count == 2 }
    }

    /// A tunnel that came up proved its claim: when it goes down, its peer is forgotten,
    /// never refuted; one whose IKE SA goes down before its child came up is refuted.
    @Test func onlyATunnelThatNeverCameUpRefutesItsPeer() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        fake.send(IKEEvent(kind: .childUp, connection: name, remoteAddress: "198.51.100.2", child: "\(name)-1"))
        try await until { await handoff.tunnels().map(\.state) == ["up"] }
        fake.send(IKEEvent(kind: .childDown, connection: name, remoteAddress: "198.51.100.2", child: "\(name)-1"))
        // The unload is the last thing done for it: a refutation would have come before.
        try await until { fake.calls.contains("unload-conn \(name)") }
        #expect(await node.snapshot().initiator?.refuted == [])

        handoff.discovered(discovery())
        try await until { fake.calls.filter { $0 == "initiate \(name)" }.count == 2 }
        fake.send(IKEEvent(kind: .ikeDown, connection: name, remoteAddress: "198.51.100.2"))
        try await until { await node.snapshot().initiator?.refuted.map(\.peer) == [IPAddress("198.51.100.2")!] }
    }

    @Test func aFailedInitiateUnloadsTheConnection() async throws {
        let fake = FakeIKEController()
        fake.set { $0.failInitiate = true }
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        handoff.discovered(discovery(peer: "198.51.100.3"))
        let name = IKEHandoff.connectionName(peer: IPAddress("198.51.100.3")!, child: Self.child)
        try await until { fake.calls.contains("unload-conn \(name)") }
        #expect(await handoff.tunnels().isEmpty)
    }

    /// ted's keys in charon beyond the configuration's (a peer removed since) are unloaded;
    /// keys of others are left alone.
    @Test func keysNoLongerConfiguredAreUnloaded() async throws {
        let fake = FakeIKEController()
        fake.set { $0.keyIDs = ["ted-psk", "ted-psk-7", "someone-else"] }
        let (_, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        #expect(fake.calls.filter { $0.hasPrefix("unload-shared") } == ["unload-shared ted-psk-7"])
    }

    @Test func charonGoingAwayClearsTunnelsAndComingBackAdoptsLiveChildren() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        #expect(fake.calls.prefix(6) == ["load-shared", "get-shared", "subscribe", "load-conn ted-responder-p1", "list-sas", "get-conns"])
        let name = try await initiated(handoff, fake)
        fake.send(IKEEvent(kind: .childUp, connection: name, remoteAddress: "198.51.100.2", child: "\(name)-1"))
        try await until { await handoff.tunnels().map(\.state) == ["up"] }

        fake.vanish()
        try await until { await !handoff.isConnected }
        #expect(await handoff.tunnels().isEmpty, "a tunnel must not be shown up while charon is gone")
        #expect(node.metrics.value("ted_tunnels") == 0)

        // Back, holding one live child SA of ted's and a stale connection of a killed ted.
        fake.set {
            $0.unreachable = false
            $0.calls = []
            $0.childSAs = [IKEEvent(kind: .childUp, connection: "ted-live", remoteAddress: "198.51.100.9", child: "ted-live-7",
                                    localTS: ["198.18.1.0/24"], remoteTS: ["198.18.9.0/24"])]
            $0.names = ["ted-live", "ted-stale", "ted-responder-p1", "ted-responder", "other"]
        }
        try await until { await handoff.isConnected }
        #expect(fake.calls.contains("load-shared") && fake.calls.contains("subscribe"))
        // The responder connection of an earlier configuration (no longer planned) goes too.
        #expect(fake.calls.contains("unload-conn ted-stale") && fake.calls.contains("unload-conn ted-responder"))
        #expect(!fake.calls.contains("unload-conn ted-live") && !fake.calls.contains("unload-conn ted-responder-p1")
            && !fake.calls.contains("unload-conn other"))
        let adopted = await handoff.tunnels()
        #expect(adopted.map(\.name) == ["ted-live"] && adopted.first?.state == "up" && adopted.first?.intersection == nil)
    }

    @Test func stopLeavesTunnelsInCharon() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        _ = try await initiated(handoff, fake)
        await handoff.stop()
        await node.stop()
        #expect(!fake.calls.contains { $0.hasPrefix("unload-conn") || $0.hasPrefix("terminate") })
    }

    // MARK: One IKE SA per pair (issue 24)

    /// A hand-off whose gateway (198.51.100.9) has the higher address than the test's peer
    /// (198.51.100.2).
    func higherGateway(_ fake: FakeIKEController) async throws -> (IKEHandoff, TEDNode) {
        try await handoff(fake, yaml: Self.yaml.replacingOccurrences(of: "127.0.0.1", with: "198.51.100.9"))
    }

    /// The node answers a probe of the peer's: the peer is starting IKE towards it now.
    func answerPeersProbe(_ node: TEDNode) async throws {
        let probe = TEDCodec.encode(.probe(Probe(initiatorCookie: 7, identity: Identity(address: IPAddress("198.51.100.2")!, port: 500),
                                                 summary: try Packet(parsing: "udp 198.18.2.20:53 198.18.1.10:1"), padding: 200)))
        node.inject(probe, from: IPAddress("198.18.2.20")!, port: 53)
        #expect(await node.snapshot().responder?.replies == 1)
    }

    func peerChild(_ kind: IKEEvent.Kind = .childUp, id: String = "ted-r1-v4-5") -> IKEEvent {
        IKEEvent(kind: kind, connection: "ted-r1-v4", remoteAddress: "198.51.100.2", child: id,
                 localTS: ["198.18.1.0/24"], remoteTS: ["198.18.0.0/16"], ikeID: "3")
    }

    /// Both ends discovered each other: the higher address waits, and the peer's child
    /// covering its own carries the tunnel; no second IKE SA. It goes down with that child.
    @Test func theHigherAddressLeavesTheIKESAToAPeerStartingOne() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await higherGateway(fake)
        defer { Task { await node.stop() } }
        try await answerPeersProbe(node)
        handoff.discovered(discovery())
        try await until { await handoff.tunnels().map(\.state) == ["waiting for the peer's IKE SA"] }
        fake.send(peerChild())
        try await until { await handoff.tunnels().map(\.state) == ["up"] }
        #expect(!fake.calls.contains { $0.hasPrefix("initiate") || $0.hasPrefix("load-conn ted-198") })
        #expect(node.metrics.value("ted_tunnels") == 1)
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "carried")]) == 1)
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "initiated")]) == 0)
        fake.send(peerChild(.childDown))
        try await until { await handoff.tunnels().isEmpty }
    }

    /// Without a probe of the peer's answered lately, the higher address starts at once.
    @Test func aGatewayThatAnsweredNoProbeDoesNotWait() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await higherGateway(fake)
        defer { Task { await node.stop() } }
        _ = try await initiated(handoff, fake)
    }

}
