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

/// A clock the test moves: the hand-off under it arms no timer.
final class TestClock: Sendable {
    private let time = Mutex(NIODeadline.uptimeNanoseconds(1_000_000_000))
    var now: NIODeadline { time.withLock { $0 } }
    func advance(by amount: TimeAmount) { time.withLock { $0 = $0 + amount } }
    var handoffClock: HandoffClock { HandoffClock(now: { self.now }, armsTimer: false) }
}

/// The actor around `HandoffMachine` against a fake charon and a real node. Every input is
/// awaited where the test gives it (`handOff`, `handle`, `tick` after moving the clock),
/// so each check reads the state that input left: nothing sleeps or polls. The supervisor
/// (reconnecting, reading charon's event stream) has its own test, which waits for the
/// hand-off's hooks.
@Suite struct IKEHandoffTests {
    static let logger = quietLogger
    static let yaml = """
        identity: 127.0.0.1
        policy:
          - permit ip 198.18.1.0/24 198.18.0.0/15
        peers: [198.51.100.0/24]
        ike: { vici: /nonexistent, psk: "a test key of enough bytes", initiate-timeout: TIMEOUT, max-connections-per-peer: 1 }
        """

    static func configuration(initiateTimeout: Double = 10, yaml: String = Self.yaml) throws -> Configuration {
        try ConfigurationLoader.parse(yaml.replacingOccurrences(of: "TIMEOUT", with: "\(initiateTimeout)"), path: "test.yaml")
    }

    /// A hand-off on the test's clock, connected once to `fake` (no supervisor), and its node.
    func handoff(_ fake: FakeIKEController, clock: TestClock = TestClock(), initiateTimeout: Double = 10, yaml: String = Self.yaml,
                 hooks: IKEHandoff.ChildHooks? = nil) async throws -> (IKEHandoff, TEDNode) {
        let configuration = try Self.configuration(initiateTimeout: initiateTimeout, yaml: yaml)
        // On loopback whatever the identity (`higherGateway`'s is not this host's).
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: IPAddress("127.0.0.1")!, port: 0),
                                           logger: Self.logger)
        let handoff = IKEHandoff(controller: fake, configuration: configuration, options: try #require(configuration.ike),
                                 logger: Self.logger, childHooks: hooks, clock: clock.handoffClock)
        try await handoff.connectOnce(node: node)
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

    static func name(peer: String = "198.51.100.2") -> String {
        IKEHandoff.connectionName(peer: IPAddress(peer)!, child: Self.child)
    }

    /// `systemctl reload strongswan` (`swanctl --load-all`) unloads every connection its
    /// files do not name: the next check puts back ted's keys, responder connections and
    /// tunnels' connections; while charon holds them all, a check loads nothing.
    @Test func connectionsAndKeysUnloadedFromCharonArePutBack() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        let loaded = Set(fake.connections.map(\.name))
        #expect(loaded.contains(name) && loaded.contains("ted-responder-p1"))
        let keys = SharedKeys.plan(try Self.configuration()).map(\.id)
        fake.set { $0.names = Array(loaded); $0.keyIDs = keys }
        let before = fake.calls.count
        await handoff.repairCharon()
        #expect(!fake.calls.dropFirst(before).contains { $0.hasPrefix("load-") }, "nothing missing, nothing loaded")

        fake.set { $0.names = ["an-operators-own"]; $0.keyIDs = [] }
        let unloaded = fake.calls.count
        await handoff.repairCharon()
        let repair = fake.calls.dropFirst(unloaded)
        #expect(repair.contains("load-shared") && repair.contains("load-conn ted-responder-p1") && repair.contains("load-conn \(name)"))
        #expect(!repair.contains { $0.hasPrefix("unload-") }, "the operator's own connection stays")
        // The tunnel was being set up (no child yet): its IKE_SA may have failed for the
        // missing key, so it is started again.
        #expect(repair.contains("initiate \(name)"))
        #expect(node.metrics.value("ted_repairs_total", [("layer", "charon")]) == 1)
    }

    /// An XFRM flush under kernel ESP takes charon's policies of the live tunnels: their IKE
    /// SAs are ended so that their flows are discovered and set up again; a tunnel still
    /// being set up is left to finish.
    @Test func tunnelsWhosePoliciesWereFlushedAreSetUpAgain() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        await handoff.restartTunnels()
        #expect(!fake.calls.contains("terminate \(name)"), "still connecting")
        await handoff.handle(childEvent(.childUp, name))
        await handoff.restartTunnels()
        #expect(fake.calls.contains("terminate \(name)"))
    }

    /// Hands the test's discovery off; the connection's name, once it is initiated.
    func initiated(_ handoff: IKEHandoff, _ fake: FakeIKEController) async throws -> String {
        await handoff.handOff(discovery())
        let name = Self.name()
        #expect(fake.calls.contains("initiate \(name)"))
        return name
    }

    func childEvent(_ kind: IKEEvent.Kind, _ name: String, connection: String? = nil) -> IKEEvent {
        IKEEvent(kind: kind, connection: connection ?? name, remoteAddress: "198.51.100.2", child: "\(name)-1",
                 childConfig: connection == nil ? nil : name)
    }

    func refuted(_ node: TEDNode) async -> [IPAddress]? { await node.snapshot().initiator?.refuted.map(\.peer) }

    @Test func oneConnectionPerPeerAndIntersectionThenUpOnTheChildEvent() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        await handoff.handOff(discovery())
        let name = try await initiated(handoff, fake)
        #expect(fake.calls.filter { $0 == "load-conn \(name)" }.count == 1)
        #expect(fake.calls.filter { $0 == "initiate \(name)" }.count == 1)
        #expect(await handoff.tunnels().map(\.state) == ["connecting"])
        await handoff.handle(childEvent(.childUp, name))
        #expect(await handoff.tunnels().map(\.state) == ["up"])
        #expect(node.metrics.value("ted_tunnels") == 1, "ted_tunnels counts the tunnels up")
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "initiated")]) == 1)
        await handoff.handle(childEvent(.childDown, name))
        #expect(fake.calls.last == "unload-conn \(name)")
        #expect(await handoff.tunnels().isEmpty)
        #expect(node.metrics.value("ted_tunnels") == 0)
    }

    /// charon may put a connection's child under another connection's IKE SA (equal peer
    /// settings): the child's configuration name says whose it is.
    @Test func aChildUnderAnotherIKESABelongsToItsOwnConnection() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        await handoff.handle(childEvent(.childUp, name, connection: "ted-other"))
        #expect(await handoff.tunnels().map(\.state) == ["up"])
        await handoff.handle(childEvent(.childDown, name, connection: "ted-other"))
        #expect(await handoff.tunnels().isEmpty)
    }

    /// The responder's IKE SAs with every peer share one connection (`ted-responder`): one
    /// peer's IKE SA going down takes its own child SAs' kernel state, never another peer's.
    @Test func onePeersIKESAGoingDownLeavesAnotherPeersChildren() async throws {
        let fake = FakeIKEController()
        let downs = Mutex<[String]>([])
        let (handoff, node) = try await handoff(fake, hooks: .init(up: { _, _ in }, down: { child in downs.withLock { $0.append(child) } }))
        defer { Task { await node.stop() } }
        await handoff.handle(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.1", child: "ted-r1-v4-3", ikeID: "1"))
        await handoff.handle(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.3", child: "ted-r2-v4-4", ikeID: "2"))
        await handoff.handle(IKEEvent(kind: .ikeDown, connection: "ted-responder", remoteAddress: "198.51.100.1", ikeID: "1"))
        #expect(downs.withLock { $0 } == ["ted-r1-v4-3"])
        // An IKE SA down without an id (an older charon) still takes its connection's children.
        await handoff.handle(IKEEvent(kind: .ikeDown, connection: "ted-responder", remoteAddress: "198.51.100.3"))
        #expect(downs.withLock { $0 } == ["ted-r1-v4-3", "ted-r2-v4-4"])
    }

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

    /// Past the per-peer cap a discovery starts no connection; `ted status` shows why.
    @Test func handOffsPastTheCapAreRefusedAndShown() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        _ = try await initiated(handoff, fake)
        let other = discovery()
        let narrower = Proxy(proto: .udp, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.1.0/24")!),
                             responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!))!
        await handoff.handOff(Discovery(peer: other.peer, entries: [narrower], chosenEntry: 0, intersection: narrower,
                                        packet: other.packet, localRule: other.localRule, rtt: other.rtt, attempts: 1,
                                        responseSource: other.responseSource, responseSourcePort: 500))
        #expect(fake.calls.filter { $0.hasPrefix("load-conn ted-198") }.count == 1)
        #expect(await handoff.tunnels().map(\.state) == ["connecting", "capped: 1 connections to this peer"])
    }

    /// A child this host cannot install (charon logs why) is not the peer's failure: ted
    /// shows it with charon's reason and never refutes the peer; after initiate-timeout the
    /// record goes, with its connection, so a later packet tries again.
    @Test func aChildThisHostCannotInstallLeavesItsPeerUnrefuted() async throws {
        let fake = FakeIKEController()
        let clock = TestClock()
        let (handoff, node) = try await handoff(fake, clock: clock, initiateTimeout: 0.5)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        // charon put the child under the IKE SA of another connection to the same peer: the
        // selectors of its route line say which tunnel failed.
        let route = "error installing route with policy 198.18.1.0/24 === 198.18.2.0/24 out"
        await handoff.handle(IKEEvent(kind: .childInstallFailed, connection: "ted-198-51-100-2-other", remoteAddress: nil, reason: route))
        #expect(await handoff.tunnels().map(\.state) == ["install failed: \(route)"])
        clock.advance(by: .milliseconds(499))
        await handoff.tick()
        #expect(!fake.calls.contains("unload-conn \(name)"), "shown until initiate-timeout")
        clock.advance(by: .milliseconds(1))
        await handoff.tick()
        #expect(fake.calls.contains("unload-conn \(name)"))
        #expect(await handoff.tunnels().isEmpty)
        #expect(await refuted(node) == [], "a local failure refutes nobody")
        // A responder child (no record of ours) is shown too, under its IKE SA's peer.
        await handoff.handle(IKEEvent(kind: .ikeUp, connection: "ted-responder-p1", remoteAddress: "198.51.100.3", ikeID: "9"))
        await handoff.handle(IKEEvent(kind: .childInstallFailed, connection: "ted-responder-p1", remoteAddress: nil, ikeID: "9", reason: route))
        #expect(await handoff.tunnels().map { "\($0.name) \($0.peer) \($0.state)" } == ["ted-responder-p1 198.51.100.3 install failed: \(route)"])
    }

    @Test func aTunnelThatDoesNotComeUpInTimeIsTerminatedAndUnloaded() async throws {
        let fake = FakeIKEController()
        let clock = TestClock()
        let (handoff, node) = try await handoff(fake, clock: clock, initiateTimeout: 0.3)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        clock.advance(by: .milliseconds(299))
        await handoff.tick()
        #expect(await handoff.tunnels().map(\.state) == ["connecting"])
        clock.advance(by: .milliseconds(1))
        await handoff.tick()
        #expect(fake.calls.suffix(2) == ["terminate \(name)", "unload-conn \(name)"])
        #expect(await handoff.tunnels().isEmpty)
        // The peer did not prove its claim: refuted for that intersection (negative-ttl).
        #expect(await refuted(node) == [IPAddress("198.51.100.2")!])
        #expect(await node.snapshot().initiator?.refuted.first?.intersection == discovery().intersection)
        // The next discovery of the same pair tries again.
        await handoff.handOff(discovery())
        #expect(fake.calls.filter { $0 == "initiate \(name)" }.count == 2)
    }

    /// A tunnel that came up proved its claim: when it goes down, its peer is forgotten,
    /// never refuted; one whose IKE SA goes down before its child came up is refuted.
    @Test func onlyATunnelThatNeverCameUpRefutesItsPeer() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        let name = try await initiated(handoff, fake)
        await handoff.handle(childEvent(.childUp, name))
        await handoff.handle(childEvent(.childDown, name))
        #expect(fake.calls.contains("unload-conn \(name)"))
        #expect(await refuted(node) == [])

        await handoff.handOff(discovery())
        #expect(fake.calls.filter { $0 == "initiate \(name)" }.count == 2)
        await handoff.handle(IKEEvent(kind: .ikeDown, connection: name, remoteAddress: "198.51.100.2"))
        #expect(await refuted(node) == [IPAddress("198.51.100.2")!])
    }

    @Test func aFailedInitiateUnloadsTheConnection() async throws {
        let fake = FakeIKEController()
        fake.set { $0.failInitiate = true }
        let (handoff, node) = try await handoff(fake)
        defer { Task { await node.stop() } }
        await handoff.handOff(discovery(peer: "198.51.100.3"))
        #expect(fake.calls.last == "unload-conn \(Self.name(peer: "198.51.100.3"))")
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

    /// The supervisor: it connects, reads charon's events, and when charon goes away clears
    /// every tunnel, then reconnects and adopts what charon still holds. The test waits for
    /// the hand-off's hooks (child up and down, reconciled), never for time.
    /// A hook that never comes fails the test at its time limit.
    @Test(.timeLimit(.minutes(1))) func charonGoingAwayClearsTunnelsAndComingBackAdoptsLiveChildren() async throws {
        let fake = FakeIKEController()
        let configuration = try Self.configuration()
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: IPAddress("127.0.0.1")!, port: 0),
                                           logger: Self.logger)
        defer { Task { await node.stop() } }
        let (hooks, hook) = AsyncStream<String>.makeStream()
        let handoff = IKEHandoff(controller: fake, configuration: configuration, options: try #require(configuration.ike),
                                 logger: Self.logger,
                                 childHooks: .init(up: { child, _ in hook.yield("up \(child)") }, down: { hook.yield("down \($0)") },
                                                   reconciled: { hook.yield("reconciled") }))
        var heard = hooks.makeAsyncIterator()
        try await handoff.start(node: node)
        #expect(await heard.next() == "reconciled")
        #expect(await handoff.isConnected)
        #expect(node.metrics.value("ted_ike_connected") == 1 && node.metrics.value("ted_ike_reconnects_total") == 0)
        let first = try #require(await handoff.charon())
        #expect(first.connectedSince != nil && first.description.hasPrefix("connected since 20") && first.reconnects == 0)
        #expect(fake.calls.prefix(6) == ["load-shared", "get-shared", "subscribe", "load-conn ted-responder-p1", "list-sas", "get-conns"])
        let name = try await initiated(handoff, fake)
        fake.send(childEvent(.childUp, name))
        #expect(await heard.next() == "up \(name)-1")
        #expect(await handoff.tunnels().map(\.state) == ["up"])

        fake.vanish()
        #expect(await heard.next() == "down \(name)-1")
        #expect(await !handoff.isConnected)
        #expect(node.metrics.value("ted_ike_connected") == 0)
        #expect(await handoff.charon() == CharonStatus(connectedSince: nil, reconnects: 0))
        #expect(await handoff.charon()?.description == "disconnected")
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
        #expect(await heard.next() == "up ted-live-7")
        #expect(await heard.next() == "reconciled")
        #expect(await handoff.isConnected)
        #expect(node.metrics.value("ted_ike_connected") == 1 && node.metrics.value("ted_ike_reconnects_total") == 1)
        let again = try #require(await handoff.charon())
        #expect(again.reconnects == 1 && again.connectedSince != nil)
        #expect(fake.calls.contains("load-shared") && fake.calls.contains("subscribe"))
        // The responder connection of an earlier configuration (no longer planned) goes too.
        #expect(fake.calls.contains("unload-conn ted-stale") && fake.calls.contains("unload-conn ted-responder"))
        #expect(!fake.calls.contains("unload-conn ted-live") && !fake.calls.contains("unload-conn ted-responder-p1")
            && !fake.calls.contains("unload-conn other"))
        let adopted = await handoff.tunnels()
        #expect(adopted.map(\.name) == ["ted-live"] && adopted.first?.state == "up" && adopted.first?.intersection == nil)
        await handoff.stop()
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
    func higherGateway(_ fake: FakeIKEController, clock: TestClock = TestClock()) async throws -> (IKEHandoff, TEDNode) {
        try await handoff(fake, clock: clock, yaml: Self.yaml.replacingOccurrences(of: "127.0.0.1", with: "198.51.100.9"))
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
        await handoff.handOff(discovery())
        #expect(await handoff.tunnels().map(\.state) == ["waiting for the peer's IKE SA"])
        await handoff.handle(peerChild())
        #expect(await handoff.tunnels().map(\.state) == ["up"])
        #expect(!fake.calls.contains { $0.hasPrefix("initiate") || $0.hasPrefix("load-conn ted-198") })
        #expect(node.metrics.value("ted_tunnels") == 1)
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "carried")]) == 1)
        #expect(node.metrics.value("ted_tunnel_setup_seconds_count", [("how", "initiated")]) == 0)
        await handoff.handle(peerChild(.childDown))
        #expect(await handoff.tunnels().isEmpty)
    }

    /// A gateway left waiting starts IKE itself when the peer's child does not come.
    @Test func aWaitThatEndsWithoutThePeersChildInitiates() async throws {
        let fake = FakeIKEController()
        let clock = TestClock()
        let (handoff, node) = try await higherGateway(fake, clock: clock)
        defer { Task { await node.stop() } }
        try await answerPeersProbe(node)
        await handoff.handOff(discovery())
        #expect(!fake.calls.contains { $0.hasPrefix("initiate") })
        clock.advance(by: .seconds(2))
        await handoff.tick()
        #expect(fake.calls.contains("initiate \(Self.name())"))
        #expect(await handoff.tunnels().map(\.state) == ["connecting"])
    }

    /// Without a probe of the peer's answered lately, the higher address starts at once.
    @Test func aGatewayThatAnsweredNoProbeDoesNotWait() async throws {
        let fake = FakeIKEController()
        let (handoff, node) = try await higherGateway(fake)
        defer { Task { await node.stop() } }
        _ = try await initiated(handoff, fake)
    }
}
