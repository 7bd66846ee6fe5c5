import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// Floods of distinct flows: every table stays within its limit.
@Suite struct BoundedMemoryTests {
    @Test func initiatorTablesStayWithinLimits() {
        let settings = DiscoverySettings(negativeTTL: .seconds(600), maxPending: 32, maxCache: 64)
        var initiator = Initiator(policy: policy("permit ip 10.0.0.0/8 10.0.0.0/8"), identity: initiatorIdentity,
                                  settings: settings)
        var rng = SeededRNG(seed: 31)
        var now = t0
        for index in 0..<6000 {
            let p = packet("udp 10.1.\(index % 200).\(index / 200 % 250):\(index % 60000 + 1) 10.\(index % 7 + 2).\(index / 7 % 250).\(index % 251):53")
            for action in [initiator.packet(p, now: now, rng: &rng)] {
                // Answer one probe in three with a host-to-host entry, so every success is its own
                // cache entry; the rest time out into the failure cache.
                guard let probe = action.sentProbe, index % 3 == 0,
                      let entry = Proxy(proto: .udp, initiatorSide: HalfProxy(pattern: .host(p.source)),
                                        responderSide: HalfProxy(pattern: .host(p.destination))) else { continue }
                let reply = TEDCodec.encode(.response(Response(initiatorCookie: probe.cookie, responderCookie: 1,
                                                               identity: responderIdentity, entries: [entry])))
                #expect(initiator.received(reply, from: responderIdentity.address, port: 500, now: now)
                    .discovery != nil)
            }
            if index % 50 == 0 {
                now = now + .milliseconds(700)
                _ = initiator.tick(now: now)
            }
            #expect(initiator.pendingCount <= 32 && initiator.cacheCount <= 64 && initiator.failureCount <= 64)
        }
        let snapshot = initiator.snapshot
        #expect(snapshot.pending.count == initiator.pendingCount && snapshot.cache.count == initiator.cacheCount
            && snapshot.failures.count == initiator.failureCount)
        #expect(initiator.cacheCount == 64 && initiator.failureCount == 64)
        let counters = initiator.counters
        #expect(counters.failures[.resourceLimit, default: 0] > 0)
        #expect(counters.evictions > 0)
    }

    @Test func responderSourceTableStaysWithinItsLimitUnderDistinctSources() {
        var settings = generousResponderSettings()
        settings.maxTrackedSources = 100
        var responder = Responder(policy: policy("permit ip any any"), identity: responderIdentity, settings: settings)
        for index in 0..<20_000 {
            let source = IPAddress(v4: UInt32(index) << 8)
            let probe = TEDCodec.encode(.probe(Probe(initiatorCookie: UInt64(index + 1), identity: initiatorIdentity,
                                                     summary: packet("udp 10.1.0.1:5 10.2.0.1:53"))))
            _ = responder.received(probe, from: source, port: 5, now: at(Int64(index)))
            #expect(responder.trackedSources <= 100)
        }
        #expect(responder.counters.replies == 20_000)
    }
}
