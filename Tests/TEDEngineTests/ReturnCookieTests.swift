import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// Return-routability cookies (issues 21, 28): a responder whose rate limits refuse a probe
/// challenges it, and a probe that echoes a good cookie is served from its identity
/// prefix's own bucket, which forged floods cannot reach; a cookie it does not take is no
/// cookie.
@Suite struct ReturnCookieTests {
    let responderPolicy = policy("permit tcp 10.2.0.0/16 10.1.0.0/16")
    let initiatorPolicy = policy("permit tcp 10.1.0.0/16 10.2.0.0/16")
    let genuine = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
    let challengeSecret = CookieSecret(k0: 0x1111_2222_3333_4444, k1: 0x5555_6666_7777_8888)

    /// The daemon's default limits, with challenges on.
    func defaultSettings(challenges: Bool = true) -> ResponderSettings {
        ResponderSettings(secret: secret, challenges: challenges, challengeSecret: challengeSecret)
    }

    /// Limits that refuse every probe but the first of each source /24.
    func tightSettings() -> ResponderSettings {
        var settings = defaultSettings()
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        return settings
    }

    func probe(_ summary: Packet? = nil, cookie: Cookie = 0x0102_0304_0506_0708, identity: Identity = initiatorIdentity,
               echo: ReturnCookie? = nil, padding: Int? = nil) -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: cookie, identity: identity, summary: summary ?? genuine,
                                     padding: padding, cookie: echo)))
    }

    /// A responder that has used up 10.1.0.0/24's only token, and the cookie it gives the genuine probe.
    func challenged(at time: NIODeadline = t0) throws -> (Responder, ReturnCookie) {
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: tightSettings())
        #expect(isResponse(responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: time)))
        let action = responder.received(probe(), from: ip("10.1.0.5"), port: 40000, now: time)
        guard case .reply(_, let to, let port, .challenge) = action else { throw CookieTestError.noChallenge }
        #expect(to == initiatorIdentity.address && port == initiatorIdentity.effectivePort)
        let issued = try #require(challenge(action))
        #expect(issued.initiatorCookie == 0x0102_0304_0506_0708)
        return (responder, issued.cookie)
    }

    enum CookieTestError: Error { case noChallenge }

    // MARK: - The responder

    @Test func aRateLimitedProbeIsChallengedAndItsEchoAnswered() throws {
        var (responder, cookie) = try challenged()
        #expect(responder.counters.challenges == 1 && responder.counters.replies == 1)
        #expect(responder.counters.drops.isEmpty)
        // Without the cookie the limit still holds; with it the probe is answered.
        #expect(challenge(responder.received(probe(), from: ip("10.1.0.5"), port: 40000, now: t0)) != nil)
        #expect(isResponse(responder.received(probe(echo: cookie), from: ip("10.1.0.5"), port: 40000, now: t0)))
        #expect(responder.counters.cookiesAccepted == 1 && responder.counters.replies == 2)
    }

    @Test func withChallengesOffARateLimitedProbeIsDropped() {
        var settings = tightSettings()
        settings.challenges = false
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        #expect(responder.received(probe(), from: ip("10.1.0.5"), port: 1, now: t0) == .drop(.rateLimitedSource))
        #expect(responder.counters.challenges == 0)
    }

    /// The identity checks come first: a refused identity is never challenged, however
    /// limited the responder is; an ordinary one beside it is.
    @Test(arguments: HostileNetworkTests.refused)
    func aRefusedIdentityIsNeverChallenged(address: String, reason: IdentityRefusal) {
        var settings = tightSettings()
        settings.peerCheck = PeerAddressCheck(own: [ip("198.51.100.2")], broadcasts: [ip("198.51.100.255")])
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        for attempt in 0..<3 {
            #expect(responder.received(probe(identity: Identity(address: ip(address), port: 500)), from: ip("10.1.0.5"),
                                       port: 1, now: at(Int64(attempt))) == .drop(.refusedIdentity(reason)))
        }
        #expect(responder.counters.challenges == 0)
        #expect(challenge(responder.received(probe(), from: ip("10.1.0.5"), port: 1, now: t0)) != nil)
    }

    /// A probe no permit covers (no match, or a deny first) passes on without a challenge
    /// (another gateway may answer it), and costs nothing beyond the lookup: no bucket.
    @Test func aProbeNoPermitCoversIsNotChallenged() {
        let withDeny = policy("deny tcp 10.2.9.0/24 10.1.0.0/16", "permit tcp 10.2.0.0/16 10.1.0.0/16")
        var responder = Responder(policy: withDeny, identity: responderIdentity, settings: tightSettings())
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        for (summary, reason) in [("udp 10.1.0.5:1 10.2.0.7:53", DropReason.noMatch), ("tcp 10.1.0.5:1 10.2.9.7:443", .deny)] {
            #expect(responder.received(probe(packet(summary)), from: ip("10.1.0.5"), port: 1, now: t0) == .drop(reason),
                    "\(summary)")
        }
        #expect(responder.trackedSources == 1 && responder.trackedTargets == 1)
        #expect(challenge(responder.received(probe(packet("tcp 10.1.0.5:1 10.2.8.7:443")), from: ip("10.1.0.5"), port: 1,
                                             now: t0)) != nil)
        #expect(responder.counters.challenges == 1)
    }

    @Test func challengesHaveABudgetOfTheirOwn() {
        var settings = tightSettings()
        settings.challengeRate = RateLimit(perSecond: 1, burst: 2)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        let actions = (1...3).map { responder.received(probe(cookie: UInt64($0)), from: ip("10.1.0.5"), port: 1, now: t0) }
        #expect(actions.prefix(2).allSatisfy { challenge($0) != nil })
        #expect(actions[2] == .drop(.rateLimitedSource))
        #expect(challenge(responder.received(probe(cookie: 4), from: ip("10.1.0.5"), port: 1, now: at(1000))) != nil)
        #expect(responder.counters.challenges == 3)
    }

    /// No amplification: a challenge is never larger than the probe it answers, whatever the probe.
    @Test(arguments: [nil, 0, 200])
    func aChallengeIsNeverLargerThanItsProbe(padding: Int?) throws {
        let summaries = [genuine, packet("tcp [2001:db8:1::5]:1 [2001:db8:2::7]:443")]
        for summary in summaries {
            for identity in [initiatorIdentity, initiatorIdentity6] {
                let lines = ["permit tcp 10.2.0.0/16 10.1.0.0/16", "permit tcp 2001:db8:2::/48 2001:db8:1::/48"]
                var settings = tightSettings()
                settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
                var responder = Responder(policy: policy(lines: lines), identity: responderIdentity, settings: settings)
                _ = responder.received(probe(summary, cookie: 99), from: summary.source, port: 1, now: t0)
                let datagram = probe(summary, identity: identity, padding: padding)
                let action = responder.received(datagram, from: summary.source, port: 1, now: t0)
                let bytes = try #require(action.replyBytes)
                #expect(challenge(action) != nil)
                #expect(bytes.readableBytes <= datagram.readableBytes && bytes.readableBytes == 72)
            }
        }
    }

    @Test func aCookieIsGoodInItsSlotAndTheNextOnly() throws {
        for (time, expected) in [(at(0), nil), (at(9_999), nil), (at(10_000), nil), (at(19_999), nil),
                                 (at(20_000), CookieRefusal.stale), (at(100_000), .stale)] {
            var (responder, cookie) = try challenged()
            let action = responder.received(probe(echo: cookie), from: ip("10.1.0.5"), port: 40000, now: time)
            if let expected {
                // No cookie: the limits refuse it, so it is challenged afresh.
                #expect(challenge(action) != nil, "\(time)")
                #expect(responder.counters.cookiesRefused == [expected: 1])
            } else {
                #expect(isResponse(action), "\(time)")
                #expect(responder.counters.cookiesAccepted == 1)
            }
        }
    }

    /// Each slot has a key of its own: the same probe gets another MAC in the next slot,
    /// and a MAC moved to another slot's number is a forgery.
    @Test func secretsRotateWithTheSlot() throws {
        let (_, first) = try challenged(at: t0)
        let (_, next) = try challenged(at: at(10_000))
        #expect(first.bytes.prefix(8) != next.bytes.prefix(8) && first.bytes.suffix(8) != next.bytes.suffix(8))
        var (responder, _) = try challenged(at: at(10_000))
        let moved = try #require(ReturnCookie(Array(next.bytes.prefix(8)) + Array(first.bytes.suffix(8))))
        #expect(challenge(responder.received(probe(echo: moved), from: ip("10.1.0.5"), port: 40000, now: at(10_000))) != nil)
        #expect(responder.counters.cookiesRefused == [.forged: 1])
        #expect(isResponse(responder.received(probe(echo: next), from: ip("10.1.0.5"), port: 40000, now: at(10_000))))
        // One responder across the turn of the slot: two keys, both cookies taken in the second slot.
        var (one, before) = try challenged(at: t0)
        let after = try #require(challenge(one.received(probe(), from: ip("10.1.0.5"), port: 40000, now: at(10_000)))?.cookie)
        #expect(before.bytes.suffix(8) != after.bytes.suffix(8))
        #expect(after == next)
        for cookie in [before, after] {
            #expect(isResponse(one.received(probe(echo: cookie), from: ip("10.1.0.5"), port: 40000, now: at(10_001))))
        }
    }

    /// A cookie names the identity: tampered with, from a future slot, for another identity
    /// or port, of another size or secret, it is forged, and the probe is treated as one
    /// without (challenged afresh here); for another probe of the same identity (another
    /// source, another initiator cookie) it is good.
    @Test func aCookieForAnotherIdentityOrTamperedWithIsForged() throws {
        let (base, cookie) = try challenged()
        var tampered = cookie.bytes
        tampered[15] ^= 1
        var future = cookie.bytes
        future[7] &+= 1
        let cases: [(String, ByteBuffer)] = [
            ("tampered MAC", probe(echo: ReturnCookie(tampered))),
            ("future slot", probe(echo: ReturnCookie(future))),
            ("another identity", probe(identity: Identity(address: ip("198.51.100.7"), port: 500), echo: cookie)),
            ("another identity port", probe(identity: Identity(address: initiatorIdentity.address, port: 4500), echo: cookie)),
            ("another size", probe(echo: ReturnCookie(Array(cookie.bytes.prefix(12))))),
            ("another secret", probe(echo: ReturnCookie(Array(cookie.bytes.prefix(8)) + Array(repeating: 0, count: 8)))),
        ]
        for (name, datagram) in cases {
            var responder = base
            #expect(challenge(responder.received(datagram, from: ip("10.1.0.5"), port: 40000, now: t0)) != nil, "\(name)")
            #expect(responder.counters.cookiesRefused == [.forged: 1] && responder.counters.cookiesAccepted == 0, "\(name)")
        }
        for (name, datagram, source) in [("as given", probe(echo: cookie), ip("10.1.0.5")),
                                         ("another source", probe(echo: cookie), ip("10.1.0.6")),
                                         ("another initiator cookie", probe(cookie: 7, echo: cookie), ip("10.1.0.5"))] {
            var responder = base
            #expect(isResponse(responder.received(datagram, from: source, port: 40000, now: t0)), "\(name)")
            #expect(responder.counters.cookiesAccepted == 1, "\(name)")
        }
    }

    /// Good cookies of one identity prefix share its proven bucket; past it the probe meets
    /// the ordinary limits (here: challenged again). Another prefix has its own.
    @Test func provenProbesHaveABucketPerIdentityPrefix() throws {
        var settings = tightSettings()
        settings.provenRate = RateLimit(perSecond: 0, burst: 2)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        let neighbour = Identity(address: ip("198.51.100.7"), port: 500)
        var actions: [ResponderAction] = []
        for (cookie, identity) in [(UInt64(1), initiatorIdentity), (2, neighbour), (3, initiatorIdentity)] {
            let issued = try #require(challenge(responder.received(probe(cookie: cookie, identity: identity), from: ip("10.1.0.5"),
                                                                   port: 1, now: t0)))
            actions.append(responder.received(probe(cookie: cookie, identity: identity, echo: issued.cookie), from: ip("10.1.0.5"),
                                              port: 1, now: t0))
        }
        #expect(actions.prefix(2).allSatisfy(isResponse))
        #expect(challenge(actions[2]) != nil)
        let other = Identity(address: ip("198.51.101.7"), port: 500)
        let issued = try #require(challenge(responder.received(probe(identity: other), from: ip("10.1.0.5"), port: 1, now: t0)))
        #expect(isResponse(responder.received(probe(identity: other, echo: issued.cookie), from: ip("10.1.0.5"), port: 1, now: t0)))
    }

    /// Identities that read their own cookies (a /64 of an attacker's, each address its
    /// own) get no more than the global proven cap, whatever their prefixes.
    @Test func provenIdentitiesShareAGlobalCap() throws {
        var settings = defaultSettings()
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        settings.provenGlobalRate = RateLimit(perSecond: 0, burst: 5)
        var responder = Responder(policy: policy("permit tcp 2001:db8:2::/48 2001:db8:1::/48"), identity: responderIdentity,
                                  settings: settings)
        let summary = packet("tcp [2001:db8:1::5]:1 [2001:db8:2::7]:443")
        _ = responder.received(probe(summary, cookie: 99), from: summary.source, port: 1, now: t0)
        var answered = 0
        for n in 1...40 {
            // 2001:db8:ff00:<n>::1: every identity in a /64 of its own.
            let identity = Identity(address: IPAddress(v6: (UInt128(0x2001_0db8_ff00_0000) | UInt128(n)) << 64 | 1), port: 500)
            let issued = try #require(challenge(responder.received(probe(summary, cookie: UInt64(n), identity: identity),
                                                                   from: summary.source, port: 1, now: t0)))
            if isResponse(responder.received(probe(summary, cookie: UInt64(n), identity: identity, echo: issued.cookie),
                                             from: summary.source, port: 1, now: t0)) { answered += 1 }
        }
        #expect(answered == 5)
        #expect(responder.counters.cookiesAccepted == 40)
    }

    // MARK: - The initiator

    @Test func theInitiatorEchoesAChallengeForItsDiscoveryAtOnce() throws {
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity)
        var rng = SeededRNG(seed: 5)
        let first = try #require(initiator.packet(genuine, now: t0, rng: &rng).sentProbe)
        let cookie = try #require(ReturnCookie(Array(1...16)))
        let echo = try #require(initiator.received(challengeBytes(first.cookie, cookie), from: ip("192.0.2.9"), port: 500,
                                                   now: at(20)).sentProbe)
        // The same probe, to the discovery's own destination (not the challenge's source), with the cookie.
        #expect(echo.destination == first.destination && echo.destinationPort == first.destinationPort)
        #expect(echo.source == first.source && echo.sourcePort == first.sourcePort && echo.cookie == first.cookie)
        #expect(echo.answersChallenge && !first.answersChallenge)
        guard case .probe(let sent) = try TEDCodec.decode(first.bytes), case .probe(let echoed) = try TEDCodec.decode(echo.bytes)
        else { throw CookieTestError.noChallenge }
        #expect(echoed == sent.echoing(cookie) && sent.cookie == nil)
        // One extra send per scheduled send: a second challenge now is kept, and the newest
        // cookie goes with the retransmission.
        let newer = try #require(ReturnCookie(Array(101...116)))
        #expect(initiator.received(challengeBytes(first.cookie, newer), from: ip("192.0.2.9"), port: 500, now: at(30))
            == .ignored(.challengeKept))
        let retransmit = try #require(initiator.tick(now: at(10_000)).first?.sentProbe)
        #expect(retransmit.bytes == TEDCodec.encode(.probe(sent.echoing(newer))))
        #expect(!retransmit.answersChallenge && retransmit.attempt == 2)
        // After that send, a challenge makes an extra send again.
        #expect(initiator.received(challengeBytes(first.cookie, cookie), from: ip("192.0.2.9"), port: 500, now: at(10_010))
            .sentProbe != nil)
        #expect(initiator.counters.challengesAnswered == 2)
    }

    func challengeBytes(_ initiatorCookie: Cookie, _ cookie: ReturnCookie) -> ByteBuffer {
        TEDCodec.encode(.challenge(Challenge(initiatorCookie: initiatorCookie, cookie: cookie)))
    }

    /// A challenge comes only from the address probed or a peer that may answer (`peers`):
    /// anyone else's is set aside, however well it guessed the initiator cookie.
    @Test func aChallengeFromAnAddressThatMayNotAnswerIsSetAside() throws {
        let settings = DiscoverySettings(peers: [PeerAuthorization(identity: pattern("198.51.100.0/24"))])
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity, settings: settings)
        var rng = SeededRNG(seed: 5)
        let first = try #require(initiator.packet(genuine, now: t0, rng: &rng).sentProbe)
        let cookie = try #require(ReturnCookie(Array(1...16)))
        #expect(initiator.received(challengeBytes(first.cookie, cookie), from: ip("203.0.113.9"), port: 500, now: at(5))
            == .ignored(.challengeNotAllowed))
        #expect(initiator.received(challengeBytes(first.cookie, cookie), from: first.destination, port: 500, now: at(6))
            .sentProbe != nil, "the address probed")
        #expect(initiator.received(challengeBytes(first.cookie, cookie), from: ip("198.51.100.20"), port: 500, now: at(7))
            == .ignored(.challengeKept), "a peer that may answer")
    }

    /// A random challenge injected after the genuine probe costs one extra send and
    /// delays nothing: the responder takes the made-up cookie as none and answers.
    @Test func aForgedChallengeNeitherEndsNorDelaysADiscovery() throws {
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: defaultSettings())
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity)
        var rng = SeededRNG(seed: 11)
        let first = try #require(initiator.packet(genuine, now: t0, rng: &rng).sentProbe)
        let junk = try #require(ReturnCookie((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        let echo = try #require(initiator.received(challengeBytes(first.cookie, junk), from: ip("198.51.100.66"), port: 500,
                                                   now: at(1)).sentProbe)
        // The genuine probe and the echo of the junk both reach the responder: both answered.
        for probe in [first, echo] {
            let reply = try #require(responder.received(probe.bytes, from: probe.source, port: probe.sourcePort, now: at(10))
                .replyBytes)
            if case .discovered(let found) = initiator.received(reply, from: responderIdentity.address, port: 500, now: at(20)) {
                #expect(found.attempts == 1 && found.rtt == .milliseconds(20))
            }
        }
        #expect(initiator.counters.discoveries == 1)
        #expect(responder.counters.cookiesRefused == [.forged: 1])
    }

    /// A 10-retry schedule with a 5-second first wait runs minutes, past every cookie's
    /// life: stale cookies are no cookie, the responder challenges again, and the discovery
    /// completes through a responder that challenges every probe without a good cookie.
    @Test func aLongScheduleCompletesThroughAChallengingResponder() throws {
        var settings = tightSettings()
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(cookie: 99), from: ip("10.1.0.9"), port: 1, now: t0)
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity,
                                  settings: DiscoverySettings(retries: 10, retransmitSchedule: DiscoverySettings.doubling(from: .seconds(5), retries: 10),
                                                              jitter: 0))
        var rng = SeededRNG(seed: 12)
        var outbox = [try #require(initiator.packet(genuine, now: t0, rng: &rng).sentProbe)]
        var now = t0
        var found: Discovery?
        // Sends at 0, 5, 15, 35, 75, 155, 315 and 635 s. Every answer is lost on the way back
        // until 600 s, then delivered; challenges arrive.
        var challenges = 0
        while found == nil, now < t0 + .seconds(6000) {
            while found == nil, !outbox.isEmpty {
                let probe = outbox.removeFirst()
                let action = responder.received(probe.bytes, from: probe.source, port: probe.sourcePort, now: now)
                guard let reply = action.replyBytes else { continue }
                if challenge(action) != nil { challenges += 1 }
                guard challenge(action) != nil || now >= t0 + .seconds(600) else { continue }
                switch initiator.received(reply, from: responderIdentity.address, port: 500, now: now + .milliseconds(10)) {
                case .discovered(let discovery): found = discovery
                case .send(let again): outbox.append(again)
                default: break
                }
            }
            now = initiator.nextDeadline ?? now + .seconds(1)
            for action in initiator.tick(now: now) {
                if case .send(let probe) = action { outbox.append(probe) }
                if case .failed(let failure) = action { Issue.record("failed: \(failure.reason)") }
            }
        }
        let discovery = try #require(found)
        // The cookie of 0 s serves the sends of 5 and 15 s (its slot and the next); from 35 s
        // on each send's cookie is stale, so each is challenged afresh and echoes the new one.
        #expect(discovery.attempts == 8 && challenges == 6)
        #expect(responder.counters.cookiesRefused == [.stale: 5] && responder.counters.cookiesAccepted == 8)
    }

    /// The flood's first challenge reaches the victim's initiator after its own probe was
    /// silenced (the target bucket spent): the initiator learns the cookie, which names its
    /// identity, and its discovery sends once more at once echoing it, and is answered
    /// from the proven bucket: one round trip after that challenge, no retransmission.
    @Test func aDiscoveryLeftUnansweredByAFloodIsAnsweredWithTheCookieTheFloodTaught() throws {
        var settings = defaultSettings()
        settings.perTargetRate = RateLimit(perSecond: 0, burst: 4)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity)
        var rng = SeededRNG(seed: 33)
        // Four forged probes naming the victim: 4, 3 and 2 tokens answer, 1 (below half) challenges.
        let forged = (1...4).map { n in
            responder.received(probe(cookie: 1000 + UInt64(n)), from: ip("10.1.7.\(n)"), port: 500, now: t0)
        }
        #expect(forged.prefix(3).allSatisfy(isResponse))
        let flood = try #require(challenge(forged[3]))
        let first = try #require(initiator.packet(genuine, now: at(1), rng: &rng).sentProbe)
        #expect(responder.received(first.bytes, from: first.source, port: first.sourcePort, now: at(2)) == .drop(.rateLimitedTarget))
        for reply in forged.prefix(3).compactMap(\.replyBytes) {
            #expect(initiator.received(reply, from: responderIdentity.address, port: 500, now: at(3)) == .ignored(.unknownCookie))
        }
        #expect(initiator.received(challengeBytes(flood.initiatorCookie, flood.cookie), from: responderIdentity.address, port: 500,
                                   now: at(3)) == .ignored(.cookieLearned))
        #expect(initiator.nextDeadline == at(3), "the extra send is due at once")
        let echo = try #require(initiator.tick(now: at(3)).first?.sentProbe)
        #expect(echo.answersChallenge && echo.attempt == 1)
        let answer = try #require(responder.received(echo.bytes, from: echo.source, port: echo.sourcePort, now: at(4)).replyBytes)
        guard case .discovered(let found) = initiator.received(answer, from: responderIdentity.address, port: 500, now: at(5))
        else { throw CookieTestError.noChallenge }
        #expect(found.attempts == 1 && responder.counters.cookiesAccepted == 1)
        // Challenges keep coming at the flood's pace: within a second of the last offer they
        // offer nothing (their cookie is kept for new probes); a second later they do again.
        let next = try #require(initiator.probe(packet("tcp 10.1.0.6:40001 10.2.0.8:443"), now: at(6), rng: &rng).sentProbe)
        #expect(next.answersChallenge == false)
        let newer = try #require(ReturnCookie(Array(repeating: 7, count: 16)))
        #expect(initiator.received(challengeBytes(flood.initiatorCookie &+ 1, newer), from: responderIdentity.address,
                                   port: 500, now: at(7)) == .ignored(.unknownCookie))
        let newest = try #require(ReturnCookie(Array(repeating: 8, count: 16)))
        #expect(initiator.received(challengeBytes(flood.initiatorCookie &+ 2, newest), from: responderIdentity.address,
                                   port: 500, now: at(1004)) == .ignored(.cookieLearned))
    }

    // MARK: - A flood

    /// The issue's attack, in memory: an off-path spoofer sends valid probes naming the
    /// victim's identity from forged sources in the victim's prefix, at ten times every
    /// bucket (per source, per target, in all), some echoing made-up cookies; the victim's
    /// genuine discovery, started in the middle of the flood, ends within two round trips
    /// (the challenge, then the answer to the echo): one round trip more than unloaded, and
    /// well before the first retransmission.
    @Test func aForgedFloodDoesNotStarveAGenuineDiscovery() throws {
        let outcome = try flood(challenges: true)
        let discovery = try #require(outcome.discovery)
        #expect(discovery.rtt <= .milliseconds(2 * Self.rtt) && discovery.attempts == 1)
        #expect(outcome.responder.counters.cookiesAccepted == 1)
        #expect(outcome.responder.counters.cookiesRefused[.forged, default: 0] > 0)
        #expect(outcome.largestRatio <= 1)
    }

    /// Its twin: without challenges the same flood starves the victim.
    @Test func withoutChallengesTheSameFloodStarvesTheVictim() throws {
        let outcome = try flood(challenges: false)
        #expect(outcome.discovery == nil)
        #expect(outcome.failure?.reason == .timeout)
    }

    /// A spray faster than this machine receives (150,000 probes/s; one core reads about
    /// 100,000): sources over the initiator's whole /16, identities over 4,096 /24s, while a
    /// genuine initiator discovers. Its probe is refused by the spent source and global
    /// buckets and challenged from its own pair's bucket under a global budget the spray
    /// cannot spend; the echo is answered: two round trips.
    @Test func aSprayOverEveryPrefixDoesNotStarveAGenuineDiscovery() throws {
        let outcome = try spray(challengeRate: ResponderSettings.defaultChallengeRate)
        let discovery = try #require(outcome.discovery)
        #expect(discovery.rtt == .milliseconds(2 * Self.rtt) && discovery.attempts == 1 && outcome.challenged == 1)
        #expect(outcome.challenges > 40_000, "the spray was challenged too")
    }

    /// Its twin: under the old global budget (20,000/s) the spray spends every challenge
    /// before the genuine probe's turn.
    @Test func underTheOldGlobalBudgetTheSprayStarvesIt() throws {
        let outcome = try spray(challengeRate: RateLimit(perSecond: 20_000, burst: 20_000))
        #expect(outcome.discovery == nil && outcome.challenged == 0)
    }

    func spray(challengeRate: RateLimit) throws -> (discovery: Discovery?, challenged: Int, challenges: Int) {
        var settings = defaultSettings()
        settings.challengeRate = challengeRate
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity)
        var rng = SeededRNG(seed: 2802)
        var attacker = SeededRNG(seed: 667)
        var inFlight: [(due: NIODeadline, probe: OutgoingProbe)] = []
        var replies: [(due: NIODeadline, bytes: ByteBuffer)] = []
        var found: Discovery?
        var challenged = 0
        func handle(_ action: InitiatorAction, now: NIODeadline) {
            if case .send(let probe) = action { inFlight.append((now + .milliseconds(Self.rtt / 2), probe)) }
            if case .discovered(let discovery) = action { found = discovery }
        }
        // The genuine discovery starts at 300 ms, once the old budget's burst is spent; the
        // spray runs until its first retransmission would be due (500 ms later).
        for millisecond in Int64(0)..<790 where found == nil {
            let now = at(millisecond)
            if millisecond == 300 { handle(initiator.packet(genuine, now: now, rng: &rng), now: now) }
            for _ in 0..<150 {
                let source = IPAddress(v4: 0x0a01_0000 | UInt32.random(in: 0...0xffff, using: &attacker))
                let identity = Identity(address: IPAddress(v4: 0xc633_0001 | UInt32.random(in: 0...0xfff, using: &attacker) << 8), port: 500)
                let summary = try #require(Packet(proto: .tcp, source: source, destination: ip("10.2.0.7"), sourcePort: 1, destinationPort: 443))
                _ = responder.received(probe(summary, cookie: UInt64.random(in: 1...UInt64.max, using: &attacker), identity: identity),
                                       from: source, port: 500, now: now)
            }
            for arriving in inFlight where arriving.due <= now {
                let action = responder.received(arriving.probe.bytes, from: arriving.probe.source, port: arriving.probe.sourcePort,
                                                now: now)
                if challenge(action) != nil { challenged += 1 }
                if let bytes = action.replyBytes { replies.append((now + .milliseconds(Self.rtt / 2), bytes)) }
            }
            inFlight.removeAll { $0.due <= now }
            for reply in replies where reply.due <= now {
                handle(initiator.received(reply.bytes, from: responderIdentity.address, port: 500, now: now), now: now)
            }
            replies.removeAll { $0.due <= now }
            initiator.tick(now: now).forEach { handle($0, now: now) }
        }
        return (found, challenged, responder.counters.challenges)
    }

    static let rtt: Int64 = 20

    struct FloodOutcome {
        var discovery: Discovery?
        var failure: Failure?
        var responder: Responder
        /// Largest reply size over its probe's size, challenges and responses alike.
        var largestRatio: Double
    }

    /// One millisecond at a time for 8 s: the attacker sends 10 probes a millisecond
    /// without a cookie and 2 with a made-up one (10,000/s without, ten times the global 1,000/s and a thousand times the per-source and
    /// per-target 10/s); at 1 s the victim's host sends a packet. Datagrams take RTT/2 each
    /// way; the victim's initiator receives every challenge sent to its identity.
    func flood(challenges: Bool) throws -> FloodOutcome {
        var responder = Responder(policy: responderPolicy, identity: responderIdentity,
                                  settings: defaultSettings(challenges: challenges))
        // Three retransmissions 0.5, 1 and 2 s apart: a starved discovery fails by 6.6 s,
        // inside the flood.
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity,
                                  settings: DiscoverySettings(retransmitSchedule: [.milliseconds(500), .seconds(1), .seconds(2)]))
        var rng = SeededRNG(seed: 2101)
        var attacker = SeededRNG(seed: 666)
        let start = at(1000)
        var toResponder: [(due: NIODeadline, probe: OutgoingProbe)] = []
        var toInitiator: [(due: NIODeadline, bytes: ByteBuffer)] = []
        var outcome = FloodOutcome(responder: responder, largestRatio: 0)
        func handle(_ actions: [InitiatorAction], now: NIODeadline) {
            for action in actions {
                switch action {
                case .send(let probe): toResponder.append((now + .milliseconds(Self.rtt / 2), probe))
                case .discovered(let discovery): outcome.discovery = discovery
                case .failed(let failure): outcome.failure = failure
                default: break
                }
            }
        }
        func serve(_ bytes: ByteBuffer, from source: IPAddress, port: UInt16, now: NIODeadline) {
            let action = responder.received(bytes, from: source, port: port, now: now)
            guard case .reply(let reply, let to, _, _) = action else { return }
            outcome.largestRatio = max(outcome.largestRatio, Double(reply.readableBytes) / Double(bytes.readableBytes))
            // Replies to probes naming the victim reach the victim's initiator; the
            // victim's own replies are few, the forged ones' challenges many.
            if to == initiatorIdentity.address { toInitiator.append((now + .milliseconds(Self.rtt / 2), reply)) }
        }
        for millisecond in Int64(0)..<8000 {
            let now = at(millisecond)
            if now == start { handle([initiator.packet(genuine, now: now, rng: &rng)], now: now) }
            for index in 0..<12 {
                let source = IPAddress(v4: 0x0a01_0000 | UInt32.random(in: 0...255, using: &attacker))
                let forged: ReturnCookie? = index >= 10
                    ? ReturnCookie((0..<16).map { _ in UInt8.random(in: 0...255, using: &attacker) }) : nil
                let summary = try #require(Packet(proto: .tcp, source: source, destination: ip("10.2.0.7"),
                                                  sourcePort: UInt16.random(in: 1024...65535, using: &attacker),
                                                  destinationPort: 443))
                serve(probe(summary, cookie: UInt64.random(in: 1...UInt64.max, using: &attacker), echo: forged),
                      from: source, port: 500, now: now)
            }
            let arriving = toResponder.filter { $0.due <= now }
            toResponder.removeAll { $0.due <= now }
            for datagram in arriving { serve(datagram.probe.bytes, from: datagram.probe.source, port: datagram.probe.sourcePort, now: now) }
            let replies = toInitiator.filter { $0.due <= now }
            toInitiator.removeAll { $0.due <= now }
            for reply in replies { handle([initiator.received(reply.bytes, from: responderIdentity.address, port: 500, now: now)], now: now) }
            handle(initiator.tick(now: now), now: now)
            if outcome.discovery != nil || outcome.failure != nil { break }
        }
        outcome.responder = responder
        return outcome
    }
}
