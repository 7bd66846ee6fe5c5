import NIOCore
import NIOPosix
import Synchronization
import Testing
import TEDEngine
import TEDModel
import TEDWire
@testable import TEDDaemon

/// A review finding: this gateway's own addresses were read once at start, so an address
/// added later (a VRRP address) was never refused as a peer identity.
@Suite struct OwnAddressWatchTests {
    @Test(.timeLimit(.minutes(1))) func aChangedAddressSetReachesTheEnginesOnceAndStopEndsTheWatch() async throws {
        let current = Mutex(PeerAddressCheck(own: [IPAddress("198.51.100.1")!]))
        let seen = Mutex<[PeerAddressCheck]>([])
        let watch = OwnAddressWatch(loop: MultiThreadedEventLoopGroup.singleton.next(), interval: .milliseconds(20),
                                    initial: current.withLock { $0 }, read: { current.withLock { $0 } },
                                    changed: { check in seen.withLock { $0.append(check) } })
        try await Task.sleep(for: .milliseconds(200))
        #expect(seen.withLock { $0 }.isEmpty, "nothing changed: nothing to hand over")
        let vrrp = PeerAddressCheck(own: [IPAddress("198.51.100.1")!, IPAddress("198.51.100.254")!])
        current.withLock { $0 = vrrp }
        for _ in 0..<100 where seen.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(seen.withLock { $0 } == [vrrp])
        watch.stop()
        current.withLock { $0 = PeerAddressCheck() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(seen.withLock { $0 }.count == 1, "a stopped watch hands nothing over")
    }

    /// A read that fails (getifaddrs) changes nothing: the engines keep the last good set
    /// rather than an empty one that would let identities naming this gateway through.
    @Test(.timeLimit(.minutes(1))) func aFailedReadKeepsTheLastGoodSet() async throws {
        let vrrp = PeerAddressCheck(own: [IPAddress("198.51.100.1")!, IPAddress("198.51.100.254")!])
        let reads = Mutex<[PeerAddressCheck?]>([nil, nil, nil, vrrp])
        let seen = Mutex<[PeerAddressCheck]>([])
        let watch = OwnAddressWatch(loop: MultiThreadedEventLoopGroup.singleton.next(), interval: .milliseconds(10),
                                    initial: PeerAddressCheck(own: [IPAddress("198.51.100.1")!]),
                                    read: { reads.withLock { $0.isEmpty ? vrrp : $0.removeFirst() } },
                                    changed: { check in seen.withLock { $0.append(check) } })
        defer { watch.stop() }
        for _ in 0..<500 where seen.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(seen.withLock { $0 } == [vrrp], "three failed reads handed nothing over; the good one did")
    }

    /// The engines take the new set at once: a response from the address just added is
    /// refused, a probe naming it is not answered.
    @Test func theEnginesRefuseAnAddressAddedAfterStart() throws {
        var initiator = Initiator(policy: try Policy(lines: ["permit tcp 10.1.0.0/16 10.2.0.0/16"]),
                                  identity: Identity(address: IPAddress("198.51.100.1")!, port: 500))
        #expect(initiator.settings.peerCheck.refusal(of: IPAddress("198.51.100.254")!) == nil)
        initiator.update(peerCheck: PeerAddressCheck(own: [IPAddress("198.51.100.254")!]))
        #expect(initiator.settings.peerCheck.refusal(of: IPAddress("198.51.100.254")!) == .ownAddress)
        var responder = Responder(policy: try Policy(lines: ["permit tcp 10.2.0.0/16 10.1.0.0/16"]),
                                  identity: Identity(address: IPAddress("198.51.100.2")!, port: 500), settings: ResponderSettings(secret: CookieSecret(k0: 1, k1: 2)))
        responder.update(peerCheck: PeerAddressCheck(own: [IPAddress("198.51.100.254")!]))
        #expect(responder.settings.peerCheck.refusal(of: IPAddress("198.51.100.254")!) == .ownAddress)
    }
}
