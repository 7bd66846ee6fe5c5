import NIOCore
import Testing
import TEDModel
import TEDWire
@testable import TEDEngine

/// When a responder challenges and when it checks a cookie (issues 21, 28): the source and
/// global limits turn a refusal into a challenge; the target limit, which bounds what
/// reaches one identity, turns it into silence, and spends its last half on challenges; an
/// echoed cookie is checked whether or not this responder sends challenges itself, and one
/// it does not take is no cookie.
@Suite struct ChallengeTriggerTests {
    let responderPolicy = policy("permit tcp 10.2.0.0/16 10.0.0.0/8")
    let challengeSecret = CookieSecret(k0: 0x1111_2222_3333_4444, k1: 0x5555_6666_7777_8888)
    let tight = RateLimit(perSecond: 0, burst: 1)

    func probe(from source: String, identity: String, cookie: Cookie = 0x0102_0304_0506_0708, echo: ReturnCookie? = nil) -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: cookie, identity: Identity(address: ip(identity), port: 500),
                                     summary: packet("tcp \(source):40000 10.2.0.7:443"), cookie: echo)))
    }

    func settings(challenges: Bool = true) -> ResponderSettings {
        ResponderSettings(secret: secret, challenges: challenges, challengeSecret: challengeSecret)
    }

    enum Limit: String, CaseIterable { case source, global }

    /// The one limit made tight, and a second probe that only it refuses (the first takes
    /// the limit's one token): from the same source /24, or towards another identity.
    @Test(arguments: Limit.allCases)
    func theSourceAndGlobalLimitsChallengeWhatTheyRefuse(_ limit: Limit) throws {
        var settings = settings()
        switch limit {
        case .source: settings.perSourceRate = tight
        case .global: settings.globalRate = tight
        }
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        #expect(isResponse(responder.received(probe(from: "10.1.0.5", identity: "198.51.100.1"), from: ip("10.1.0.5"), port: 1,
                                              now: t0)))
        let (source, identity) = switch limit {
        case .source: ("10.1.0.6", "198.51.101.1")
        case .global: ("10.3.0.6", "198.51.101.1")
        }
        let action = responder.received(probe(from: source, identity: identity), from: ip(source), port: 1, now: t0)
        let issued = try #require(challenge(action), "\(limit): \(action)")
        #expect(responder.counters.challenges == 1 && responder.counters.drops.isEmpty)
        // And its echo is answered, past the same limit.
        #expect(isResponse(responder.received(probe(from: source, identity: identity, echo: issued.cookie), from: ip(source),
                                              port: 1, now: t0)))
    }

    /// An empty target bucket is silence, challenge or not: it bounds what reaches the identity.
    @Test func anEmptyTargetBucketStaysSilent() {
        var settings = settings()
        settings.perTargetRate = tight
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        #expect(isResponse(responder.received(probe(from: "10.1.0.5", identity: "198.51.100.1"), from: ip("10.1.0.5"), port: 1,
                                              now: t0)))
        #expect(responder.received(probe(from: "10.3.0.6", identity: "198.51.100.9"), from: ip("10.3.0.6"), port: 1, now: t0)
            == .drop(.rateLimitedTarget))
        #expect(responder.counters.challenges == 0)
    }

    /// Below half its burst, a target's tokens go to challenges though every other limit
    /// would answer: the identity's own initiator learns a cookie while some are left.
    @Test func aPressedTargetIsChallenged() {
        var settings = settings()
        settings.perTargetRate = RateLimit(perSecond: 0, burst: 6)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        let actions = (1...7).map { n in
            responder.received(probe(from: "10.3.0.\(n)", identity: "198.51.100.1", cookie: UInt64(n)), from: ip("10.3.0.\(n)"),
                               port: 1, now: t0)
        }
        // 6, 5, 4 and 3 tokens: answers; 2 and 1 (below half): challenges; none: silence.
        #expect(actions.prefix(4).allSatisfy(isResponse))
        #expect(actions[4...5].allSatisfy { challenge($0) != nil })
        #expect(actions[6] == .drop(.rateLimitedTarget))
        // Without challenges the same tokens are answers.
        var quiet = Responder(policy: responderPolicy, identity: responderIdentity, settings: {
            var plain = settings
            plain.challenges = false
            return plain
        }())
        let plain = (1...7).map { n in
            quiet.received(probe(from: "10.3.0.\(n)", identity: "198.51.100.1", cookie: UInt64(n)), from: ip("10.3.0.\(n)"),
                           port: 1, now: t0)
        }
        #expect(plain.prefix(6).allSatisfy(isResponse) && plain[6] == .drop(.rateLimitedTarget))
    }

    /// Challenges have a budget per source prefix and identity prefix pair under the global
    /// one: a flood from one /24 naming one identity spends that pair's, and the same /24
    /// naming another identity (a genuine initiator whose prefix the flood forges), or
    /// another /24 naming the same identity, is still challenged.
    @Test func aFloodFromOneSourcePrefixCannotSpendOthersChallenges() {
        var settings = settings()
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        settings.globalRate = RateLimit(perSecond: 0, burst: 1)
        settings.challengePairRate = RateLimit(perSecond: 0, burst: 3)
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        _ = responder.received(probe(from: "10.1.0.200", identity: "198.51.100.1"), from: ip("10.1.0.200"), port: 1, now: t0)
        let flood = (1...10).map { n in
            responder.received(probe(from: "10.1.0.\(n)", identity: "198.51.101.\(n)", cookie: UInt64(n)),
                               from: ip("10.1.0.\(n)"), port: 1, now: t0)
        }
        #expect(flood.prefix(3).allSatisfy { challenge($0) != nil })
        #expect(flood.dropFirst(3).allSatisfy { $0 == .drop(.rateLimitedSource) })
        for (source, identity) in [("10.1.0.6", "198.51.120.1"), ("10.3.0.6", "198.51.101.1")] {
            #expect(challenge(responder.received(probe(from: source, identity: identity), from: ip(source), port: 1, now: t0)) != nil,
                    "\(source) naming \(identity)")
        }
    }

    /// A responder with challenges off still checks cookies (another of the same secret may
    /// have sent the challenge): a good one is taken past the limits; a forged one is
    /// counted and is no cookie, so the probe meets the ordinary limits like any other.
    @Test func withChallengesOffAnEchoedCookieIsStillChecked() throws {
        var challenger = Responder(policy: responderPolicy, identity: responderIdentity, settings: {
            var settings = settings()
            settings.perSourceRate = tight
            return settings
        }())
        _ = challenger.received(probe(from: "10.1.0.9", identity: "198.51.100.1"), from: ip("10.1.0.9"), port: 1, now: t0)
        let issued = try #require(challenge(challenger.received(probe(from: "10.1.0.5", identity: "198.51.100.1"),
                                                                from: ip("10.1.0.5"), port: 1, now: t0)))
        var quiet = Responder(policy: responderPolicy, identity: responderIdentity, settings: {
            var settings = settings(challenges: false)
            settings.perSourceRate = tight
            return settings
        }())
        var forged = issued.cookie.bytes
        forged[15] ^= 1
        #expect(isResponse(quiet.received(probe(from: "10.1.0.5", identity: "198.51.100.1", echo: ReturnCookie(forged)),
                                          from: ip("10.1.0.5"), port: 1, now: t0)), "the source's one token")
        #expect(quiet.received(probe(from: "10.1.0.5", identity: "198.51.100.1", echo: ReturnCookie(forged)), from: ip("10.1.0.5"),
                               port: 1, now: t0) == .drop(.rateLimitedSource))
        #expect(isResponse(quiet.received(probe(from: "10.1.0.5", identity: "198.51.100.1", echo: issued.cookie),
                                          from: ip("10.1.0.5"), port: 1, now: t0)))
        #expect(quiet.counters.cookiesAccepted == 1 && quiet.counters.cookiesRefused == [.forged: 2])
    }
}
