import NIOCore
import Testing
import TEDModel
import TEDWire
@testable import TEDEngine

/// When a responder challenges and when it checks a cookie (issue 21): each of its three
/// limits (source, target, global) turns a refusal into a challenge, and an echoed cookie
/// is checked whether or not this responder sends challenges itself.
@Suite struct ChallengeTriggerTests {
    let responderPolicy = policy("permit tcp 10.2.0.0/16 10.0.0.0/8")
    let challengeSecret = CookieSecret(k0: 0x1111_2222_3333_4444, k1: 0x5555_6666_7777_8888)
    let tight = RateLimit(perSecond: 0, burst: 1)

    func probe(from source: String, identity: String, echo: ReturnCookie? = nil) -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: 0x0102_0304_0506_0708, identity: Identity(address: ip(identity), port: 500),
                                     summary: packet("tcp \(source):40000 10.2.0.7:443"), cookie: echo)))
    }

    func settings(challenges: Bool = true) -> ResponderSettings {
        ResponderSettings(secret: secret, challenges: challenges, challengeSecret: challengeSecret)
    }

    enum Limit: String, CaseIterable { case source, target, global }

    /// The one limit made tight, and a second probe that only it refuses (the first takes
    /// the limit's one token): from the same source /24, towards the same identity /24, or
    /// neither.
    @Test(arguments: Limit.allCases)
    func eachLimitChallengesWhatItRefuses(_ limit: Limit) throws {
        var settings = settings()
        switch limit {
        case .source: settings.perSourceRate = tight
        case .target: settings.perTargetRate = tight
        case .global: settings.globalRate = tight
        }
        var responder = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings)
        #expect(isResponse(responder.received(probe(from: "10.1.0.5", identity: "198.51.100.1"), from: ip("10.1.0.5"), port: 1,
                                              now: t0)))
        let (source, identity) = switch limit {
        case .source: ("10.1.0.6", "198.51.101.1")
        case .target: ("10.3.0.6", "198.51.100.9")
        case .global: ("10.3.0.6", "198.51.101.1")
        }
        let action = responder.received(probe(from: source, identity: identity), from: ip(source), port: 1, now: t0)
        let issued = try #require(challenge(action), "\(limit): \(action)")
        #expect(responder.counters.challenges == 1 && responder.counters.drops.isEmpty)
        // And its echo is answered, past the same limit.
        #expect(isResponse(responder.received(probe(from: source, identity: identity, echo: issued.cookie), from: ip(source),
                                              port: 1, now: t0)))
    }

    /// A responder with challenges off still checks cookies (another of the same secret may
    /// have sent the challenge): a forged one is refused, however much budget is left, and
    /// a good one is taken.
    @Test func withChallengesOffAnEchoedCookieIsStillChecked() throws {
        var challenger = Responder(policy: responderPolicy, identity: responderIdentity, settings: {
            var settings = settings()
            settings.perSourceRate = tight
            return settings
        }())
        _ = challenger.received(probe(from: "10.1.0.9", identity: "198.51.100.1"), from: ip("10.1.0.9"), port: 1, now: t0)
        let issued = try #require(challenge(challenger.received(probe(from: "10.1.0.5", identity: "198.51.100.1"),
                                                                from: ip("10.1.0.5"), port: 1, now: t0)))
        var quiet = Responder(policy: responderPolicy, identity: responderIdentity, settings: settings(challenges: false))
        var forged = issued.cookie.bytes
        forged[15] ^= 1
        #expect(quiet.received(probe(from: "10.1.0.5", identity: "198.51.100.1", echo: ReturnCookie(forged)), from: ip("10.1.0.5"),
                               port: 1, now: t0) == .drop(.badCookie(.forged)))
        #expect(isResponse(quiet.received(probe(from: "10.1.0.5", identity: "198.51.100.1", echo: issued.cookie),
                                          from: ip("10.1.0.5"), port: 1, now: t0)))
        #expect(quiet.counters.cookiesAccepted == 1 && quiet.counters.cookiesRefused == [.forged: 1])
    }
}
