import NIOCore
import Testing
import TEDConfig
import TEDEngine
import TEDModel
import TEDWire
@testable import TEDDaemon
@testable import TEDVici

/// The hand-off's decisions with a clock the test advances: nothing sleeps.
@Suite struct HandoffMachineTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let timeout = TimeAmount.seconds(10)
    let peer = IPAddress("198.51.100.2")!
    let child = IKEHandoffTests.child
    var name: String { HandoffMachine.connectionName(peer: peer, child: child) }

    func machine(perPeer: Int = 16) throws -> HandoffMachine {
        var options = try #require(try ConfigurationLoader.parse(
            IKEHandoffTests.yaml.replacingOccurrences(of: "TIMEOUT", with: "10"), path: "test.yaml").ike)
        options.maxConnectionsPerPeer = perPeer
        return HandoffMachine(settings: .init(identity: IPAddress("198.51.100.9")!, options: options,
                                              policy: try Policy(lines: ["permit ip 198.18.1.0/24 198.18.0.0/15"])))
    }

    func discovery(_ peer: String = "198.51.100.2") -> Discovery { IKEHandoffTests().discovery(peer: peer) }

    func childEvent(_ kind: IKEEvent.Kind, connection: String, child id: String, ikeID: String? = nil) -> IKEEvent {
        IKEEvent(kind: kind, connection: connection, remoteAddress: "198.51.100.2", child: id,
                 localTS: ["198.18.1.0/24"], remoteTS: ["198.18.2.0/24"], ikeID: ikeID)
    }

    func starts(_ actions: [HandoffMachine.Action]) -> [String] {
        actions.compactMap { if case .start(let connection) = $0 { connection.name } else { nil } }
    }

    @Test func aTunnelStartsOnceAndIsUpOnItsChildNeverExpiring() throws {
        var m = try machine()
        #expect(starts(m.discovered(discovery(), child: child, waits: false, now: t0)) == [name])
        #expect(m.discovered(discovery(), child: child, waits: false, now: t0).isEmpty, "one connection per (peer, child)")
        #expect(m.records.map(\.state) == ["connecting"] && m.nextDeadline == t0 + timeout)
        let up = m.event(childEvent(.childUp, connection: name, child: "\(name)-1"), now: t0 + .milliseconds(250))
        #expect(up.contains(.childUp("\(name)-1", [child])))
        #expect(up.contains(.setUp(.milliseconds(250), carried: false)))
        #expect(m.records.map(\.state) == ["up"] && m.tunnelsUp == 1 && m.nextDeadline == nil)
        #expect(m.tick(now: t0 + .seconds(3600)).isEmpty)
        let down = m.event(childEvent(.childDown, connection: name, child: "\(name)-1"), now: t0 + .seconds(3601))
        #expect(down.contains(.childDown("\(name)-1")) && down.contains(.unload(name)))
        #expect(!down.contains { if case .refute = $0 { true } else { false } }, "a tunnel that was up proved its claim")
        #expect(m.records.isEmpty)
    }

    /// Records carry selectors, shown in charon's notation: the proposal's, and an adopted
    /// child's own lists (each local with each remote) back as charon gave them.
    @Test func recordsShowTheSelectorsInCharonsNotation() throws {
        var m = try machine()
        let mdns = TrafficSelector(proto: .udp, local: AddressPattern("198.18.1.0/24")!,
                                   remote: AddressPattern("198.18.2.0/24")!, remotePorts: PortRange(5353, 5353)!)
        _ = m.discovered(discovery(), child: mdns, waits: false, now: t0)
        let adopted = IKEEvent(kind: .childUp, connection: "ted-live", remoteAddress: "198.51.100.3", child: "ted-live-7",
                               localTS: ["198.18.1.0/25", "198.18.1.128/25"], remoteTS: ["198.18.9.0/24[tcp/443]"])
        _ = m.reconciled(live: [adopted], connections: [], keep: [], now: t0)
        #expect(m.records.map(\.description).sorted() == [
            "\(HandoffMachine.connectionName(peer: peer, child: mdns)) connecting peer 198.51.100.2: 198.18.1.0/24[udp] === 198.18.2.0/24[udp/5353]",
            "ted-live up peer 198.51.100.3: 198.18.1.0/25[tcp],198.18.1.128/25[tcp] === 198.18.9.0/24[tcp/443]",
        ].sorted())
    }

    @Test func aTunnelNotUpInTimeFailsAndRefutesItsPeer() throws {
        var m = try machine()
        _ = m.discovered(discovery(), child: child, waits: false, now: t0)
        #expect(m.tick(now: t0 + timeout - .nanoseconds(1)).isEmpty)
        let expired = m.tick(now: t0 + timeout)
        #expect(expired.contains(.refute(peer: peer, intersection: discovery().intersection)))
        #expect(expired.contains(.stop(name)) && expired.contains(.forget(peer: peer, intersection: discovery().intersection)))
        #expect(m.records.isEmpty)
    }

    /// A later attempt under the same name has its own deadline.
    @Test func anEarlierAttemptsDeadlineLeavesALaterOneAlone() throws {
        var m = try machine()
        _ = m.discovered(discovery(), child: child, waits: false, now: t0)
        _ = m.startFailed(name, error: "refused")
        #expect(starts(m.discovered(discovery(), child: child, waits: false, now: t0 + .seconds(5))) == [name])
        #expect(m.tick(now: t0 + timeout).isEmpty)
        #expect(m.records.map(\.state) == ["connecting"])
        #expect(!m.tick(now: t0 + .seconds(5) + timeout).isEmpty)
    }

    /// Left to the peer (`InitiationOrder`): no start while waiting; the peer's child that
    /// covers the proposal carries the tunnel, and takes it down with it.
    @Test func aWaitingTunnelIsCarriedByThePeersChild() throws {
        var m = try machine()
        let waiting = m.discovered(discovery(), child: child, waits: true, now: t0)
        #expect(starts(waiting).isEmpty && m.records.map(\.state) == ["waiting for the peer's IKE SA"])
        #expect(m.nextDeadline == t0 + InitiationOrder.wait)
        let carried = m.event(childEvent(.childUp, connection: "ted-responder", child: "ted-r1-v4-7", ikeID: "4"),
                              now: t0 + .milliseconds(300))
        #expect(carried.contains(.setUp(.milliseconds(300), carried: true)))
        #expect(m.records.map(\.state) == ["up"] && m.tunnelsUp == 1)
        #expect(starts(m.tick(now: t0 + .seconds(60))).isEmpty)
        let down = m.event(IKEEvent(kind: .ikeDown, connection: "ted-responder", remoteAddress: "198.51.100.2", ikeID: "4"),
                           now: t0 + .seconds(61))
        #expect(down.contains(.childDown("ted-r1-v4-7")) && down.contains(.forget(peer: peer, intersection: discovery().intersection)))
        #expect(m.records.isEmpty)
    }

    @Test func aWaitWithoutThePeersChildEndsInItsOwnStart() throws {
        var m = try machine()
        _ = m.discovered(discovery(), child: child, waits: true, now: t0)
        // A child of another peer, or not covering the proposal, carries nothing.
        _ = m.event(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.3", child: "ted-r1-v4-1",
                             localTS: ["198.18.1.0/24"], remoteTS: ["198.18.2.0/24"]), now: t0)
        _ = m.event(IKEEvent(kind: .childUp, connection: "ted-responder", remoteAddress: "198.51.100.2", child: "ted-r1-v4-2",
                             localTS: ["198.18.1.0/25"], remoteTS: ["198.18.2.0/24"]), now: t0)
        #expect(starts(m.tick(now: t0 + InitiationOrder.wait - .nanoseconds(1))).isEmpty)
        #expect(starts(m.tick(now: t0 + InitiationOrder.wait)) == [name])
        #expect(m.records.map(\.state) == ["connecting"] && m.nextDeadline == t0 + InitiationOrder.wait + timeout)
    }

    @Test func aCoveringChildAlreadyUpCarriesANewTunnelAtOnce() throws {
        var m = try machine()
        _ = m.event(childEvent(.childUp, connection: "ted-responder", child: "ted-r1-v4-3"), now: t0)
        let actions = m.discovered(discovery(), child: child, waits: false, now: t0 + .milliseconds(5))
        #expect(starts(actions).isEmpty && actions.contains(.setUp(.zero, carried: true)))
        #expect(m.records.map(\.state) == ["up"])
    }

    /// This host's own install failure refutes nobody; the record stays for the timeout.
    @Test func anInstallFailureIsShownThenClearedWithoutRefuting() throws {
        var m = try machine()
        _ = m.discovered(discovery(), child: child, waits: false, now: t0)
        _ = m.event(IKEEvent(kind: .childInstallFailed, connection: name, remoteAddress: nil,
                             reason: "unable to install policy 198.18.1.0/24 === 198.18.2.0/24 out"), now: t0 + .seconds(1))
        #expect(m.records.map(\.state) == ["install failed: unable to install policy 198.18.1.0/24 === 198.18.2.0/24 out"])
        #expect(m.tick(now: t0 + timeout).isEmpty, "the install failure's own deadline counts")
        let cleared = m.tick(now: t0 + .seconds(1) + timeout)
        #expect(cleared.contains(.stop(name)) && !cleared.contains { if case .refute = $0 { true } else { false } })
        #expect(m.records.isEmpty)
    }

    @Test func pastTheCapNothingStartsAndStatusSaysWhy() throws {
        var m = try machine(perPeer: 1)
        _ = m.discovered(discovery(), child: child, waits: false, now: t0)
        let other = TrafficSelector(proto: .any, local: AddressPattern("198.18.1.0/25")!, remote: AddressPattern("198.18.2.0/24")!)
        #expect(starts(m.discovered(discovery(), child: other, waits: false, now: t0)).isEmpty)
        #expect(m.records.map(\.state) == ["connecting", "capped: 1 connections to this peer"])
    }

    @Test func charonGoingAwayTakesEveryChildAndTunnel() throws {
        var m = try machine()
        _ = m.discovered(discovery(), child: child, waits: false, now: t0)
        _ = m.event(childEvent(.childUp, connection: "ted-responder", child: "ted-r1-v4-3"), now: t0)
        let gone = m.disconnected()
        #expect(gone.contains(.childDown("ted-r1-v4-3")) && gone.contains(.forget(peer: peer, intersection: discovery().intersection)))
        #expect(m.records.isEmpty && m.children.isEmpty && m.nextDeadline == nil)
    }

    @Test func reconcilingAdoptsLiveChildrenAndUnloadsStaleConnections() throws {
        var m = try machine()
        let live = [IKEEvent(kind: .childUp, connection: "ted-live", remoteAddress: "198.51.100.4", child: "ted-live-7",
                             localTS: ["198.18.1.0/24"], remoteTS: ["198.18.9.0/24"])]
        let actions = m.reconciled(live: live, connections: ["ted-live", "ted-stale", "ted-responder-p1", "other"],
                                   keep: ["ted-responder-p1"], now: t0)
        #expect(actions.contains(.unload("ted-stale")) && !actions.contains(.unload("ted-live"))
            && !actions.contains(.unload("ted-responder-p1")) && !actions.contains(.unload("other")))
        #expect(m.records.map(\.name) == ["ted-live"] && m.records.first?.intersection == nil && m.tunnelsUp == 1)
        // Its connection as ted would load it again after an operator's reload unloads charon's.
        let connection = try #require(m.loadedConnections.first)
        #expect(connection.name == "ted-live" && connection.remoteAddress == "198.51.100.4"
            && connection.children.first?.remoteTS == ["198.18.9.0/24"])
    }

    /// After a reload that narrowed the policy, a live child the new policy no longer
    /// permits wholly is taken down, not adopted; one it still permits keeps its SA.
    @Test func reconcilingTakesDownChildrenThePolicyNoLongerPermits() throws {
        var m = try machine()
        func live(_ name: String, _ local: String, _ remote: String) -> IKEEvent {
            IKEEvent(kind: .childUp, connection: name, remoteAddress: "198.51.100.4", child: "\(name)-1", localTS: [local],
                     remoteTS: [remote])
        }
        let actions = m.reconciled(live: [live("ted-kept", "198.18.1.0/24", "198.18.9.0/24[tcp/443]"),
                                          live("ted-gone", "198.18.7.0/24", "198.18.9.0/24"),
                                          live("ted-wider", "198.18.0.0/16", "198.18.9.0/24")],
                                   connections: ["ted-kept", "ted-gone", "ted-wider"], keep: [], now: t0)
        #expect(actions.contains(.stop("ted-gone")) && actions.contains(.stop("ted-wider")) && !actions.contains(.stop("ted-kept")))
        #expect(m.records.map(\.name) == ["ted-kept"])
    }

    @Test func aPolicyPermitsASelectorWhollyOnlyThroughItsFirstOverlappingEntry() throws {
        let policy = try Policy(lines: ["deny tcp 198.18.1.0/24 198.18.9.0/24 eq 22", "permit ip 198.18.1.0/24 198.18.0.0/15"])
        func selector(_ proto: IPProtocol, _ remote: String, _ ports: PortRange = .all) throws -> TrafficSelector {
            TrafficSelector(proto: proto, local: try #require(AddressPattern("198.18.1.0/24")), remote: try #require(AddressPattern(remote)),
                            remotePorts: ports)
        }
        #expect(policy.permitsWholly(try selector(.tcp, "198.18.9.0/24", try #require(PortRange(443, 443)))))
        #expect(!policy.permitsWholly(try selector(.tcp, "198.18.9.0/24")), "the deny above takes port 22")
        #expect(!policy.permitsWholly(try selector(.any, "198.18.0.0/14")), "wider than the permit")
        #expect(policy.permitsWholly(try selector(.udp, "198.18.9.0/24")))
    }
}
