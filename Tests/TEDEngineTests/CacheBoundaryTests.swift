import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// The exact edges of the initiator's two caches: the instant an entry expires, a zero
/// TTL, and the rule an entry belongs to (mutants E13, E16-E18 of scripts/mutants.txt).
@Suite struct CacheBoundaryTests {
    static let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")

    static func responder() -> Responder {
        Responder(policy: policy("permit tcp 10.2.0.0/16 10.0.0.0/8"), identity: responderIdentity,
                  settings: generousResponderSettings())
    }

    /// Discovers P at `at(0)`, the answer arriving at `at(10)`.
    static func discovered(_ initiator: inout Initiator, _ p: Packet = p) throws -> Discovery {
        var rng = SeededRNG(seed: 3)
        var responder = responder()
        let probe = try #require(initiator.packet(p, now: at(0), rng: &rng).sentProbe)
        let reply = try #require(responder.received(probe.bytes, from: probe.source, port: probe.sourcePort,
                                                    now: at(0)).replyBytes)
        return try #require(initiator.received(reply, from: responderIdentity.address, port: 500, now: at(10))
            .discovery)
    }

    static func firstAction(_ initiator: inout Initiator, _ p: Packet = p, at time: NIODeadline) -> InitiatorAction? {
        var rng = SeededRNG(seed: 4)
        return initiator.packet(p, now: time, rng: &rng)
    }

    @Test func aDiscoveryAnswersUntilJustBeforeItsTTLEnds() throws {
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                  settings: DiscoverySettings(cacheTTL: .seconds(60)))
        _ = try Self.discovered(&initiator)
        let expiry = at(10) + .seconds(60)
        guard case .cached = Self.firstAction(&initiator, at: expiry - .nanoseconds(1)) else {
            Issue.record("not cached just before the TTL")
            return
        }
        #expect(Self.firstAction(&initiator, at: expiry)?.sentProbe != nil, "still cached when the TTL is over")
    }

    @Test func aZeroCacheTTLCachesNothing() throws {
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                  settings: DiscoverySettings(cacheTTL: .zero))
        _ = try Self.discovered(&initiator)
        #expect(initiator.cacheCount == 0)
        #expect(initiator.nextDeadline == nil)
    }

    @Test func aDiscoveryOnlyAnswersPacketsOfItsOwnRule() throws {
        // Rule 0 is narrower and comes first: 10.1.0.6 is its packet even though rule 1's
        // discovery (for 10.1.0.5) covers 10.1.0.0/16.
        var initiator = Initiator(policy: policy("permit tcp host 10.1.0.6 10.2.0.0/16",
                                                 "permit tcp 10.1.0.0/16 10.2.0.0/16"),
                                  identity: initiatorIdentity)
        let found = try Self.discovered(&initiator)
        let other = packet("tcp 10.1.0.6:40000 10.2.0.7:443")
        #expect(found.intersection.contains(other))
        #expect(Self.firstAction(&initiator, other, at: at(20))?.sentProbe != nil)
        guard case .cached = Self.firstAction(&initiator, packet("tcp 10.1.0.7:40000 10.2.0.7:443"), at: at(20)) else {
            Issue.record("a packet of the discovery's own rule is not answered from the cache")
            return
        }
    }

    @Test func aFailureSuppressesProbesUntilJustBeforeItsTTLEnds() throws {
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                  settings: DiscoverySettings(retries: 0, retransmitSchedule: [.milliseconds(100)],
                                                              jitter: 0, negativeTTL: .seconds(1)))
        #expect(Self.firstAction(&initiator, at: at(0))?.sentProbe != nil)
        #expect(initiator.tick(now: at(100)).first?.failure?.reason == .timeout)
        let expiry = at(100) + .seconds(1)
        guard case .failedCached = Self.firstAction(&initiator, at: expiry - .nanoseconds(1)) else {
            Issue.record("the failure is not cached just before its TTL")
            return
        }
        #expect(Self.firstAction(&initiator, at: expiry)?.sentProbe != nil, "still failing when the TTL is over")
    }
}
