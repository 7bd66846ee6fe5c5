import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

@Suite struct InitiatorTests {
    let localPolicy = policy(
        "deny tcp 10.1.0.0/16 10.2.9.0/24",
        "permit tcp 10.1.0.0/16 10.2.0.0/16",
        "permit icmp 10.1.0.0/16 10.2.0.0/16",
        "permit udp 2001:db8:1::/48 2001:db8:2::/48")

    func makeInitiator(_ settings: DiscoverySettings = DiscoverySettings()) -> Initiator {
        Initiator(policy: localPolicy, identity: initiatorIdentity, settings: settings)
    }

    /// A response to `probe` from `identity` carrying `entries`.
    func response(to probe: OutgoingProbe, identity: Identity = responderIdentity, cookie: Cookie? = nil,
                  entries: [Proxy]) -> ByteBuffer {
        TEDCodec.encode(.response(Response(initiatorCookie: cookie ?? probe.cookie, responderCookie: 99,
                                           identity: identity, entries: entries)))
    }

    @Test func unmatchedAndDeniedPacketsAreNotProtected() {
        var initiator = makeInitiator()
        var rng = SeededRNG(seed: 1)
        for text in ["tcp 10.9.0.1:1000 10.2.0.1:80", "tcp 10.1.0.1:1000 10.2.9.1:80", "udp 10.1.0.1:1 10.2.0.1:2"] {
            let p = packet(text)
            #expect(initiator.packet(p, now: t0, rng: &rng) == .notProtected(p))
        }
        #expect(initiator.counters.probesSent == 0)
        #expect(initiator.nextDeadline == nil)
    }

    @Test func probeLeavesWithPacketsAddressesAndSourcePort() throws {
        var initiator = makeInitiator(DiscoverySettings(probePort: 4500))
        var rng = SeededRNG(seed: 2)
        let tcp = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        #expect(tcp.source == ip("10.1.0.5") && tcp.sourcePort == 40000)
        #expect(tcp.destination == ip("10.2.0.7") && tcp.destinationPort == 4500)
        #expect(tcp.cookie != 0 && tcp.attempt == 1)
        let icmp = try #require(initiator.packet(packet("icmp 10.1.0.5:8 10.2.0.8:0"), now: t0, rng: &rng)
            .sentProbe)
        #expect(icmp.sourcePort == 500)
        guard case .probe(let decoded) = try TEDCodec.decode(tcp.bytes) else {
            Issue.record("the initiator sent something other than a probe")
            return
        }
        #expect(decoded.initiatorCookie == tcp.cookie)
        #expect(decoded.identity == initiatorIdentity)
        #expect(decoded.summary == packet("tcp 10.1.0.5:40000 10.2.0.7:443"))
        #expect(decoded.proxyAddress == nil)
    }

    @Test func proxyAddressIsTheLocalHalfWhenAsked() throws {
        var initiator = makeInitiator(DiscoverySettings(sendProxyAddress: true))
        var rng = SeededRNG(seed: 3)
        let probe = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        guard case .probe(let decoded) = try TEDCodec.decode(probe.bytes) else {
            Issue.record("not a probe")
            return
        }
        #expect(decoded.proxyAddress == ProxyAddress(pattern: pattern("10.1.0.0/16"), proto: .tcp))
    }

    /// Spec section 6, vector 1: with its cookie, the initiator's probe is that exact datagram.
    @Test func firstProbeIsSpecVectorOne() throws {
        let initiator = Policy(rules: [PolicyRule(index: 1, entry: try ACLParser.parseSelector(
            "tcp 198.18.1.0/24 198.18.2.0/24"), text: "")])
        var engine = Initiator(policy: initiator, identity: initiatorIdentity)
        var rng = ScriptedRNG([0x0102_0304_0506_0708])
        let probe = try #require(engine.packet(packet("tcp 198.18.1.10:40000 198.18.2.20:443"), now: t0, rng: &rng)
            .sentProbe)
        let hex = probe.bytes.readableBytesView.map { String($0, radix: 16).leftPadded(2) }.joined()
        #expect(hex == "010203040506070800000000000000000d10f0000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401000000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214")
    }

    @Test func packetsOfTheSameRuleAndDestinationJoinOneProbe() throws {
        var initiator = makeInitiator()
        var rng = SeededRNG(seed: 4)
        let first = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        for (offset, text) in ["tcp 10.1.0.5:40001 10.2.0.7:443", "tcp 10.1.0.6:1 10.2.0.7:22",
                               "tcp 10.1.0.5:40000 10.2.0.7:443"].enumerated() {
            let p = packet(text)
            #expect(initiator.packet(p, now: at(Int64(offset) * 10), rng: &rng)
                == .joined(packet: p, cookie: first.cookie, discovering: packet("tcp 10.1.0.5:40000 10.2.0.7:443")))
        }
        #expect(initiator.counters.probesSent == 1 && initiator.counters.joins == 3)
        #expect(initiator.snapshot.pending.map(\.joined) == [3])
        // Another destination, or another rule, is another discovery.
        #expect(initiator.packet(packet("tcp 10.1.0.5:1 10.2.0.8:443"), now: t0, rng: &rng).sentProbe != nil)
        #expect(initiator.packet(packet("icmp 10.1.0.5:8 10.2.0.7:0"), now: t0, rng: &rng).sentProbe != nil)
    }

    @Test(arguments: 0...5)
    func timeoutAfterExactlyRetriesPlusOneSendsOnSchedule(retries: Int) throws {
        var initiator = makeInitiator(DiscoverySettings(retries: retries))
        var rng = SeededRNG(seed: UInt64(retries))
        let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
        let first = try #require(initiator.packet(p, now: t0, rng: &rng).sentProbe)
        var sends = [(t0, first)]
        var failure: Failure?
        var now = t0
        var guardSteps = 0
        while failure == nil, let next = initiator.nextDeadline, guardSteps < 100 {
            guardSteps += 1
            now = next
            // Nothing happens a nanosecond early.
            #expect(initiator.tick(now: now - .nanoseconds(1)).isEmpty)
            for action in initiator.tick(now: now) {
                if let probe = action.sentProbe { sends.append((now, probe)) }
                if let failed = action.failure { failure = failed }
            }
        }
        #expect(sends.count == retries + 1)
        #expect(sends.map(\.1.attempt) == Array(1...(retries + 1)))
        #expect(Set(sends.map(\.1.bytes)).count == 1)
        #expect(Set(sends.map(\.1.cookie)).count == 1)
        // The default schedule doubles from 0.5 s for each of the 3 default retries; past
        // its end the last wait repeats.
        let schedule: [Int64] = [500, 1000, 2000, 4000]
        var previous = t0
        for (index, send) in sends.enumerated().dropFirst() {
            assertWithinJitter(send.0 - previous, base: schedule[min(index - 1, 3)])
            previous = send.0
        }
        assertWithinJitter(now - previous, base: schedule[min(retries, 3)])
        #expect(failure?.reason == .timeout && failure?.attempts == retries + 1 && failure?.packet == p)
        #expect(failure.map { "\($0)" } == "timeout for tcp 10.1.0.5:40000 10.2.0.7:443 after \(retries + 1) probe\(retries == 0 ? "" : "s") to 10.2.0.7")
        #expect(initiator.counters.retransmits == retries && initiator.counters.failures[.timeout] == 1)
        #expect(initiator.snapshot.pending.isEmpty)
    }

    private func assertWithinJitter(_ gap: TimeAmount, base milliseconds: Int64,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        let base = TimeAmount.milliseconds(milliseconds).nanoseconds
        #expect(gap.nanoseconds >= base * 9 / 10 && gap.nanoseconds <= base * 11 / 10,
                "gap \(gap) outside \(milliseconds) ms ± 10 %", sourceLocation: sourceLocation)
    }

    @Test func jitterSpreadsTheWaits() throws {
        var waits = Set<Int64>()
        for seed in 0..<20 {
            var initiator = makeInitiator()
            var rng = SeededRNG(seed: UInt64(seed))
            _ = initiator.packet(packet("tcp 10.1.0.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            waits.insert((try #require(initiator.nextDeadline) - t0).nanoseconds)
        }
        #expect(waits.count > 10)
    }

    @Test func failureIsCachedPerServiceUntilTheNegativeTTL() throws {
        var initiator = makeInitiator(DiscoverySettings(retries: 0, retransmitSchedule: [.seconds(1)],
                                                        negativeTTL: .seconds(30)))
        var rng = SeededRNG(seed: 5)
        let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
        _ = initiator.packet(p, now: t0, rng: &rng)
        let timedOut = initiator.tick(now: at(2000))
        #expect(timedOut.count == 1 && timedOut.first?.failure?.reason == .timeout)
        // Same service from another source port: suppressed, no probe.
        let again = packet("tcp 10.1.0.5:40007 10.2.0.7:443")
        guard case .failedCached(let suppressed, let failure, let until) = initiator.packet(again, now: at(3000),
                                                                                         rng: &rng) else {
            Issue.record("expected a cached failure")
            return
        }
        #expect(suppressed == again && failure.reason == .timeout && until == at(2000) + .seconds(30))
        // Another destination port is another service.
        #expect(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.0.7:22"), now: at(3000), rng: &rng)
            .sentProbe != nil)
        // The entry expires with the TTL; tick purges it.
        #expect(initiator.snapshot.failures.count == 1)
        _ = initiator.tick(now: at(32_000))
        #expect(initiator.snapshot.failures.count == 1) // the second discovery's failure
        #expect(initiator.packet(again, now: at(32_000), rng: &rng).sentProbe != nil)
        #expect(initiator.counters.negativeCacheHits == 1 && initiator.counters.expirations >= 1)
    }

    /// The held-packet driver's question: `knownFailure` is what `packet` would answer from
    /// the failure cache, up to the entry's expiry, yielding to a cached discovery, and it
    /// counts nothing.
    @Test func knownFailureIsWhatPacketAnswersFromTheFailureCache() throws {
        var initiator = makeInitiator(DiscoverySettings(retries: 0, retransmitSchedule: [.seconds(1)],
                                                        negativeTTL: .seconds(30)))
        var rng = SeededRNG(seed: 15)
        let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
        let otherPort = packet("tcp 10.1.0.5:40001 10.2.0.7:443")
        let otherService = packet("tcp 10.1.0.5:40000 10.2.0.7:22")
        #expect(initiator.knownFailure(of: p, now: t0) == nil, "nothing failed yet")
        _ = initiator.packet(p, now: t0, rng: &rng)
        #expect(initiator.knownFailure(of: p, now: at(1)) == nil, "pending is not failing")
        let failed = try #require(initiator.tick(now: at(2000)).first?.failure)
        let counters = initiator.counters
        for (q, failing) in [(p, true), (otherPort, true), (otherService, false),
                             (packet("tcp 10.9.0.5:40000 10.2.0.7:443"), false)] {
            #expect((initiator.knownFailure(of: q, now: at(3000)) == failed) == failing, "\(q)")
            var asked = initiator
            let answer = asked.packet(q, now: at(3000), rng: &rng)
            if case .failedCached = answer { #expect(failing, "\(q)") } else { #expect(!failing, "\(q)") }
        }
        #expect(initiator.counters == counters, "asking counts nothing")
        // Live until its expiry, not at it.
        let expires = at(2000) + .seconds(30)
        #expect(initiator.knownFailure(of: otherPort, now: expires - .nanoseconds(1)) != nil)
        #expect(initiator.knownFailure(of: otherPort, now: expires) == nil)
        // A discovery of another source that covers P answers P from the cache: not failing.
        let probe = try #require(initiator.packet(packet("tcp 10.1.3.5:40000 10.2.0.7:443"), now: at(4000),
                                                  rng: &rng).sentProbe)
        #expect(initiator.received(response(to: probe, entries: [proxy("tcp 10.1.0.0/16 10.2.0.0/16")]),
                                   from: responderIdentity.address, port: 500, now: at(4001)).discovery != nil)
        #expect(initiator.knownFailure(of: otherPort, now: at(4002)) == nil)
        guard case .cached = initiator.packet(otherPort, now: at(4002), rng: &rng) else {
            Issue.record("expected the cached discovery")
            return
        }
    }

    @Test func explicitProbeBypassesCachesAndTakesATarget() throws {
        var initiator = makeInitiator(DiscoverySettings(retries: 0))
        var rng = SeededRNG(seed: 6)
        let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
        _ = initiator.packet(p, now: t0, rng: &rng)
        _ = initiator.tick(now: at(600))
        let target = (address: ip("192.0.2.9"), port: UInt16(7500))
        let probe = try #require(initiator.probe(p, to: target, now: at(700), rng: &rng).sentProbe)
        #expect(probe.destination == target.address && probe.destinationPort == 7500 && probe.source == p.source)
        #expect(initiator.probe(p, to: target, now: at(710), rng: &rng) == .joined(packet: p, cookie: probe.cookie, discovering: p))
        #expect(initiator.probe(p, now: at(720), rng: &rng).sentProbe != nil)
    }

    @Test func pendingTableIsBounded() {
        var initiator = makeInitiator(DiscoverySettings(maxPending: 3))
        var rng = SeededRNG(seed: 7)
        var failures = 0
        for host in 1...50 {
            let actions = initiator.packet(packet("tcp 10.1.0.5:1000 10.2.1.\(host):443"), now: t0, rng: &rng)
            if actions.failure?.reason == .resourceLimit { failures += 1 }
            #expect(initiator.snapshot.pending.count <= 3)
        }
        #expect(failures == 47 && initiator.counters.failures[.resourceLimit] == 47)
        // A resource failure is not cached: once room is back the packet probes.
        while let due = initiator.nextDeadline, due <= at(60_000) { _ = initiator.tick(now: due) }
        #expect(initiator.snapshot.pending.isEmpty)
        #expect(initiator.packet(packet("tcp 10.1.0.5:1000 10.2.1.50:443"), now: at(60_000), rng: &rng)
            .sentProbe != nil)
    }

    @Test func cookiesAreNonZeroAndNeverReused() throws {
        var initiator = makeInitiator()
        var zeroFirst = ScriptedRNG([0, 0, 7])
        let probe = try #require(initiator.packet(packet("tcp 10.1.0.5:1 10.2.0.1:443"), now: t0, rng: &zeroFirst)
            .sentProbe)
        #expect(probe.cookie == 7)
        var onlyZero = ScriptedRNG(Array(repeating: 0, count: 8))
        #expect(initiator.packet(packet("tcp 10.1.0.5:1 10.2.0.2:443"), now: t0, rng: &onlyZero)
            .failure?.reason == .resourceLimit)
        var onlySeven = ScriptedRNG(Array(repeating: 7, count: 8))
        #expect(initiator.packet(packet("tcp 10.1.0.5:1 10.2.0.3:443"), now: t0, rng: &onlySeven)
            .failure?.reason == .resourceLimit)
    }

    @Test func firstEntryWhoseIntersectionHoldsThePacketIsChosen() throws {
        var initiator = makeInitiator()
        var rng = SeededRNG(seed: 8)
        let p = packet("tcp 10.1.3.5:40000 10.2.0.7:443")
        let probe = try #require(initiator.packet(p, now: t0, rng: &rng).sentProbe)
        let entries = [
            proxy("udp 10.1.0.0/16 10.2.0.0/16"),                 // protocol disjoint
            proxy("tcp 10.1.7.0/24 10.2.0.0/16"),                 // intersects, P outside
            proxy("tcp 10.1.0.5/255.255.0.255 10.2.0.0/24 eq 443"), // holds P
            proxy("ip any any"),
        ]
        let actions = initiator.received(response(to: probe, entries: entries), from: responderIdentity.address,
                                         port: 500, now: at(40))
        let discovery = try #require(actions.discovery)
        #expect(discovery.chosenEntry == 2 && discovery.entries == entries)
        #expect(discovery.intersection.initiatorSide.pattern == pattern("10.1.0.5/255.255.0.255"))
        #expect(discovery.intersection.responderSide == HalfProxy(pattern: pattern("10.2.0.0/24"), ports: .single(443)))
        #expect(discovery.intersection.proto == .tcp)
        #expect(discovery.intersection.contains(p) && discovery.peer == responderIdentity)
        #expect(discovery.rtt == .milliseconds(40) && discovery.attempts == 1 && discovery.localRule.index == 2)
        #expect(initiator.counters.discoveries == 1 && initiator.counters.responsesAccepted == 1)
        #expect("\(discovery)" == "peer 198.51.100.2:500 entry 3: tcp 10.1.0.5/255.255.0.255 <-> 10.2.0.0/24 port 443")
    }

    @Test(arguments: [
        (["udp 10.1.0.0/16 10.2.0.0/16", "tcp 10.3.0.0/16 10.2.0.0/16"], Failure.Reason.emptyIntersection),
        (["tcp 10.1.7.0/24 10.2.0.0/16", "tcp 10.1.0.0/16 10.2.0.0/16 eq 22"], .packetOutside),
    ])
    func unusableAnswersFail(entries: [String], reason: Failure.Reason) throws {
        var initiator = makeInitiator()
        var rng = SeededRNG(seed: 9)
        let p = packet("tcp 10.1.3.5:40000 10.2.0.7:443")
        let probe = try #require(initiator.packet(p, now: t0, rng: &rng).sentProbe)
        let failure = try #require(initiator.received(response(to: probe, entries: entries.map { proxy($0) }),
                                                      from: responderIdentity.address, port: 500, now: at(5))
            .failure)
        #expect(failure.reason == reason && failure.peer == responderIdentity && failure.entries.count == 2)
        #expect(initiator.snapshot.pending.isEmpty && initiator.snapshot.failures.count == 1)
        #expect(initiator.received(response(to: probe, entries: entries.map { proxy($0) }),
                                   from: responderIdentity.address, port: 500, now: at(6)) == .ignored(.duplicate))
    }

    @Test func responsesMustCarryAPendingCookieAndAnAllowedIdentity() throws {
        var initiator = makeInitiator(DiscoverySettings(peers: [PeerAuthorization(identity: pattern("198.51.100.0/30"))]))
        var rng = SeededRNG(seed: 10)
        let p = packet("tcp 10.1.3.5:40000 10.2.0.7:443")
        let probe = try #require(initiator.packet(p, now: t0, rng: &rng).sentProbe)
        let entries = [proxy("tcp 10.1.0.0/16 10.2.0.0/16")]
        #expect(initiator.received(response(to: probe, cookie: probe.cookie ^ 1, entries: entries),
                                   from: responderIdentity.address, port: 500, now: at(1)) == .ignored(.unknownCookie))
        let rogue = Identity(address: ip("203.0.113.66"), port: 500)
        #expect(initiator.received(response(to: probe, identity: rogue, entries: entries),
                                   from: rogue.address, port: 500, now: at(2)) == .ignored(.peerNotAllowed))
        #expect(initiator.snapshot.pending.count == 1)
        #expect(initiator.received(response(to: probe, entries: entries), from: responderIdentity.address,
                                   port: 500, now: at(3)).discovery != nil)
        #expect(initiator.counters.responsesIgnored == [.unknownCookie: 1, .peerNotAllowed: 1])
    }

    /// A peer that claims more than its `protects` is refused, never cached, and a genuine
    /// answer afterwards still wins.
    @Test func aClaimOutsideWhatThePeerProtectsIsRefused() throws {
        var initiator = makeInitiator(DiscoverySettings(peers: [
            PeerAuthorization(identity: pattern("198.51.100.0/24"), protects: [pattern("10.2.0.0/16")]),
        ]))
        var rng = SeededRNG(seed: 12)
        let probe = try #require(initiator.packet(packet("tcp 10.1.3.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        // Claims the whole IPv4 space as its responder side: far beyond 10.2.0.0/16.
        let greedy = [proxy("tcp 10.1.0.0/16 0.0.0.0/0")]
        #expect(initiator.received(response(to: probe, entries: greedy), from: responderIdentity.address, port: 500,
                                   now: at(1)) == .ignored(.claimNotAllowed))
        // One honest entry beside a dishonest one is still a lie.
        let mixed = [proxy("tcp 10.1.0.0/16 10.2.0.0/24"), proxy("tcp 10.1.0.0/16 10.3.0.0/16")]
        #expect(initiator.received(response(to: probe, entries: mixed), from: responderIdentity.address, port: 500,
                                   now: at(2)) == .ignored(.claimNotAllowed))
        #expect(initiator.pendingCount == 1 && initiator.cacheCount == 0)
        let honest = [proxy("tcp 10.1.0.0/16 10.2.0.0/16")]
        #expect(initiator.received(response(to: probe, entries: honest), from: responderIdentity.address, port: 500,
                                   now: at(3)).discovery != nil)
        // Exactly the protected prefix is allowed; one bit wider is not.
        let settings = DiscoverySettings(peers: [PeerAuthorization(identity: pattern("198.51.100.2/32"), protects: [pattern("10.2.0.0/16")])])
        #expect(settings.allows(peer: ip("198.51.100.2"), claiming: [proxy("tcp 10.1.0.0/16 10.2.0.0/16")]))
        #expect(!settings.allows(peer: ip("198.51.100.2"), claiming: [proxy("tcp 10.1.0.0/16 10.2.0.0/15")]))
        #expect(settings.authorizations(of: ip("198.51.100.3")) == nil)
    }

    /// The review's finding: a bare prefix beside a more specific entry with `protects`
    /// cancelled the `protects` (every matching entry's rights were OR-ed). The most
    /// specific entry decides, wherever it is listed.
    @Test func theMostSpecificPeersEntryDecides() throws {
        let narrow = PeerAuthorization(identity: pattern("198.51.100.2/32"), protects: [pattern("10.2.0.0/16")])
        let broad = PeerAuthorization(identity: pattern("198.51.100.0/24"))
        for peers in [[broad, narrow], [narrow, broad]] {
            let settings = DiscoverySettings(peers: peers)
            #expect(!settings.allows(peer: ip("198.51.100.2"), claiming: [proxy("tcp 10.1.0.0/16 10.3.0.0/16")]))
            #expect(settings.allows(peer: ip("198.51.100.2"), claiming: [proxy("tcp 10.1.0.0/16 10.2.0.0/24")]))
            #expect(settings.allows(peer: ip("198.51.100.7"), claiming: [proxy("tcp 10.1.0.0/16 10.3.0.0/16")]))
            #expect(settings.authorizations(of: ip("198.51.100.2")) == [narrow])
        }
    }

    /// A peer whose claim IKE refuted is set aside for packets inside that intersection,
    /// for `negativeTTL`: a genuine responder answering later is taken instead; outside
    /// the intersection, and after the TTL, the refuted peer is heard again.
    @Test func aRefutedPeerIsSetAsideForNegativeTTLAndAnotherAnswerWins() throws {
        var initiator = makeInitiator(DiscoverySettings(negativeTTL: .seconds(30)))
        var rng = SeededRNG(seed: 13)
        let rogue = Identity(address: ip("198.51.100.3"), port: 500)
        let claim = [proxy("tcp 10.1.0.0/16 10.2.0.0/16")]
        let first = try #require(initiator.packet(packet("tcp 10.1.3.5:40000 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        let taken = try #require(initiator.received(response(to: first, identity: rogue, entries: claim), from: rogue.address,
                                                    port: 500, now: at(1)).discovery)
        #expect(initiator.cacheCount == 1)
        #expect(initiator.refute(peer: rogue.address, intersection: taken.intersection, now: at(100)) == 1)
        #expect(initiator.cacheCount == 0 && initiator.refutationCount == 1)

        let again = try #require(initiator.packet(packet("tcp 10.1.3.5:40001 10.2.0.7:443"), now: at(200), rng: &rng)
            .sentProbe)
        #expect(initiator.received(response(to: again, identity: rogue, entries: claim), from: rogue.address, port: 500,
                                   now: at(201)) == .ignored(.refutedClaim))
        #expect(initiator.pendingCount == 1)
        let genuine = try #require(initiator.received(response(to: again, entries: claim), from: responderIdentity.address,
                                                      port: 500, now: at(250)).discovery)
        #expect(genuine.peer == responderIdentity)
        #expect(initiator.counters.responsesIgnored == [.refutedClaim: 1])

        // Outside the refuted intersection the same peer is heard.
        let icmp = try #require(initiator.packet(packet("icmp 10.1.3.5:8 10.2.0.7:0"), now: at(300), rng: &rng)
            .sentProbe)
        #expect(initiator.received(response(to: icmp, identity: rogue, entries: [proxy("icmp 10.1.0.0/16 10.2.0.0/16")]),
                                   from: rogue.address, port: 500, now: at(301)).discovery != nil)

        // Just before the TTL it is still set aside; once it passes, heard again.
        let late = try #require(initiator.probe(packet("tcp 10.1.3.5:40002 10.2.0.8:443"), now: at(29_000), rng: &rng)
            .sentProbe)
        #expect(initiator.received(response(to: late, identity: rogue, entries: claim), from: rogue.address, port: 500,
                                   now: at(30_099)) == .ignored(.refutedClaim))
        #expect(initiator.received(response(to: late, identity: rogue, entries: claim), from: rogue.address, port: 500,
                                   now: at(30_100)).discovery != nil)
    }

    /// With `negativeTTL` 0 nothing is remembered, refutations included.
    @Test func noRefutationWithoutNegativeTTL() throws {
        var initiator = makeInitiator(DiscoverySettings(negativeTTL: .zero))
        initiator.refute(peer: ip("198.51.100.3"), intersection: proxy("tcp 10.1.0.0/16 10.2.0.0/16"), now: t0)
        #expect(initiator.refutationCount == 0)
    }

    @Test func probesAndGarbageAreRejectedAndCounted() throws {
        var initiator = makeInitiator()
        var rng = SeededRNG(seed: 11)
        let probe = try #require(initiator.packet(packet("tcp 10.1.3.5:1 10.2.0.7:443"), now: t0, rng: &rng)
            .sentProbe)
        #expect(initiator.received(probe.bytes, from: probe.source, port: 500, now: t0) == .rejected(.unexpectedProbe))
        let garbage = initiator.received(ByteBuffer(bytes: [1, 2, 3]), from: probe.source, port: 500, now: t0)
        guard case .rejected(.undecodable) = garbage else {
            Issue.record("garbage was not rejected as undecodable: \(garbage)")
            return
        }
        #expect(initiator.counters.rejects.values.reduce(0, +) == 2)
        #expect(initiator.snapshot.pending.count == 1)
    }

    @Test func successIsCachedUntilTTLAndForgetRediscovers() throws {
        var initiator = makeInitiator(DiscoverySettings(cacheTTL: .seconds(300)))
        var responder = Responder(policy: policy("permit tcp 10.2.0.0/16 10.1.0.0/16"), identity: responderIdentity,
                                  settings: generousResponderSettings())
        var rng = SeededRNG(seed: 12)
        let p = packet("tcp 10.1.3.5:40000 10.2.0.7:443")
        let discovery = try #require(exchange(&initiator, &responder, p, now: t0, rng: &rng)?.discovery)
        let later = packet("tcp 10.1.9.9:5 10.2.4.4:80")
        // The cached discovery answers the later packet: the hand-off proposes its child.
        #expect(initiator.packet(later, now: at(1000), rng: &rng) == .cached(discovery.answering(later)))
        if case .cached(let answer) = initiator.packet(later, now: at(1001), rng: &rng) {
            #expect(answer.packet == later && answer.intersection == discovery.intersection && answer.peer == discovery.peer)
        } else {
            Issue.record("no cache hit")
        }
        #expect(initiator.snapshot.cache.map(\.expires) == [at(20) + .seconds(300)])
        #expect(initiator.nextDeadline == at(20) + .seconds(300))
        _ = initiator.tick(now: at(20) + .seconds(300))
        #expect(initiator.snapshot.cache.isEmpty && initiator.nextDeadline == nil)
        // Rediscover, then forget by peer and by intersection.
        let second = try #require(exchange(&initiator, &responder, p, now: at(400_000), rng: &rng)?.discovery)
        #expect(initiator.forget(peer: ip("198.51.100.77")) == 0)
        #expect(initiator.forget(peer: responderIdentity.address) == 1)
        #expect(initiator.packet(p, now: at(400_100), rng: &rng).sentProbe != nil)
        var fresh = makeInitiator()
        _ = try #require(exchange(&fresh, &responder, p, now: t0, rng: &rng)?.discovery)
        #expect(fresh.forget(intersection: proxy("tcp 10.1.3.0/24 10.2.0.7/32 eq 443")) == 1)
        #expect(fresh.packet(p, now: at(100), rng: &rng).sentProbe != nil)
        #expect(second.intersection == discovery.intersection)
    }

    @Test func cacheIsBoundedWithLRUEviction() throws {
        var initiator = makeInitiator(DiscoverySettings(maxCache: 4))
        var responder = Responder(policy: policy(lines: (11...20).map { "permit tcp 10.2.\($0).0/24 10.1.0.0/16" }),
            identity: responderIdentity, settings: generousResponderSettings())
        var rng = SeededRNG(seed: 13)
        for host in 11...20 {
            let p = packet("tcp 10.1.0.5:1000 10.2.\(host).1:443")
            #expect(exchange(&initiator, &responder, p, now: at(Int64(host) * 100), rng: &rng)?.discovery != nil)
            #expect(initiator.snapshot.cache.count <= 4)
        }
        #expect(initiator.counters.evictions == 6)
        // The newest four remain; the oldest probes again.
        for host in 17...20 {
            guard case .cached = initiator.packet(packet("tcp 10.1.0.5:1 10.2.\(host).1:443"), now: at(2000),
                                                  rng: &rng) else {
                Issue.record("10.2.\(host).0/24 should still be cached")
                return
            }
        }
        #expect(initiator.packet(packet("tcp 10.1.0.5:1 10.2.11.1:443"), now: at(2000), rng: &rng).sentProbe != nil)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
