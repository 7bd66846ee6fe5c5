import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// Cookies as properties (issue 14): an initiator cookie answers one live discovery only,
/// never an ended or a later one; the responder cookie is a function of every field of the
/// probe and of where it came from.
@Suite struct CookiePropertyTests {
    static let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")

    static func initiator(_ settings: DiscoverySettings = DiscoverySettings()) -> Initiator {
        Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity, settings: settings)
    }

    static func responder() -> Responder {
        Responder(policy: policy("permit tcp 10.2.0.0/16 10.1.0.0/16"), identity: responderIdentity,
                  settings: generousResponderSettings())
    }

    /// The responder's answer to `probe`.
    static func answer(_ probe: OutgoingProbe) throws -> ByteBuffer {
        var responder = responder()
        return try #require(responder.received(probe.bytes, from: probe.source, port: probe.sourcePort, now: t0).replyBytes)
    }

    static func received(_ initiator: inout Initiator, _ bytes: ByteBuffer, at time: NIODeadline) -> InitiatorAction? {
        initiator.received(bytes, from: responderIdentity.address, port: 500, now: time)
    }

    @Test func anEndedDiscoverysCookieNeverAnswersALaterDiscoveryOfTheSameFlow() throws {
        var initiator = Self.initiator()
        var rng = SeededRNG(seed: 7)
        let first = try #require(initiator.packet(Self.p, now: t0, rng: &rng).sentProbe)
        let firstAnswer = try Self.answer(first)
        #expect(Self.received(&initiator, firstAnswer, at: at(10))?.discovery != nil)
        // An explicit probe skips the cache: a new discovery under the same flow key.
        let second = try #require(initiator.probe(Self.p, now: at(20), rng: &rng).sentProbe)
        #expect(second.cookie != first.cookie)
        #expect(Self.received(&initiator, firstAnswer, at: at(30)) == .ignored(.duplicate))
        #expect(initiator.pendingCount == 1)
        #expect(Self.received(&initiator, try Self.answer(second), at: at(40))?.discovery != nil)
        #expect(initiator.pendingCount == 0)
    }

    @Test func aCookieAnswersOnceThenIsADuplicate() throws {
        var initiator = Self.initiator()
        var rng = SeededRNG(seed: 8)
        let probe = try #require(initiator.packet(Self.p, now: t0, rng: &rng).sentProbe)
        let answer = try Self.answer(probe)
        #expect(Self.received(&initiator, answer, at: at(10))?.discovery != nil)
        #expect(Self.received(&initiator, answer, at: at(11)) == .ignored(.duplicate))
        #expect(initiator.counters.responsesAccepted == 1)
        #expect(initiator.counters.responsesIgnored[.duplicate] == 1)
    }

    @Test func aTimedOutDiscoverysCookieAnswersNothing() throws {
        var initiator = Self.initiator(DiscoverySettings(retries: 0, retransmitSchedule: [.milliseconds(100)], jitter: 0))
        var rng = SeededRNG(seed: 9)
        let probe = try #require(initiator.packet(Self.p, now: t0, rng: &rng).sentProbe)
        let answer = try Self.answer(probe)
        #expect(initiator.tick(now: at(100)).first?.failure?.reason == .timeout)
        #expect(Self.received(&initiator, answer, at: at(110)) == .ignored(.duplicate))
        let later = try #require(initiator.probe(Self.p, now: at(120), rng: &rng).sentProbe)
        #expect(Self.received(&initiator, answer, at: at(130)) == .ignored(.duplicate))
        #expect(initiator.pendingCount == 1)
        #expect(Self.received(&initiator, try Self.answer(later), at: at(140))?.discovery != nil)
    }

    @Test func aCookieNeverAnswersAnotherFlowsDiscovery() throws {
        var initiator = Self.initiator()
        var rng = SeededRNG(seed: 10)
        let one = try #require(initiator.packet(Self.p, now: t0, rng: &rng).sentProbe)
        let other = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.9.9:443"), now: t0, rng: &rng)
            .sentProbe)
        #expect(one.cookie != other.cookie)
        let forged = TEDCodec.encode(.response(Response(initiatorCookie: one.cookie ^ other.cookie, responderCookie: 1,
                                                        identity: responderIdentity,
                                                        entries: [proxy("tcp 10.1.0.0/16 10.2.0.0/16")])))
        #expect(Self.received(&initiator, forged, at: at(5)) == .ignored(.unknownCookie))
        #expect(Self.received(&initiator, try Self.answer(other), at: at(10))?.discovery?.packet.destination == ip("10.2.9.9"))
        #expect(initiator.pendingCount == 1)
    }

    /// A new cookie is never zero, never a live one and never a recently ended one.
    @Test func drawnCookiesAreFreshAndNonZero() throws {
        var initiator = Self.initiator()
        var script = ScriptedRNG([0, 0xaa])
        let first = try #require(initiator.packet(Self.p, now: t0, rng: &script).sentProbe)
        #expect(first.cookie == 0xaa)  // zero skipped
        // A second flow while the first is live: 0xaa is taken.
        var taken = ScriptedRNG([0xaa, 0xbb])
        let second = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.9.9:443"), now: t0, rng: &taken)
            .sentProbe)
        #expect(second.cookie == 0xbb)
        // The first ends; its cookie stays unusable for a while.
        #expect(Self.received(&initiator, try Self.answer(first), at: at(10))?.discovery != nil)
        var again = ScriptedRNG([0xaa, 0xcc])
        let third = try #require(initiator.probe(Self.p, now: at(20), rng: &again).sentProbe)
        #expect(third.cookie == 0xcc)
    }

    @Test func theEighthDrawMayFindACookieNoNinthIsTried() throws {
        var initiator = Self.initiator()
        var script = ScriptedRNG([0x77])
        _ = try #require(initiator.packet(packet("tcp 10.1.0.5:40000 10.2.9.9:443"), now: t0, rng: &script).sentProbe)
        var seventhBad = ScriptedRNG(Array(repeating: 0x77, count: 4) + Array(repeating: 0, count: 3) + [0x78])
        #expect(initiator.packet(Self.p, now: t0, rng: &seventhBad).sentProbe?.cookie == 0x78)
        var eightBad = ScriptedRNG(Array(repeating: 0x77, count: 8) + [0x79])
        #expect(initiator.probe(packet("tcp 10.1.0.5:40000 10.2.8.8:443"), now: t0, rng: &eightBad)
            .failure?.reason == .resourceLimit)
    }

    // MARK: - The responder's cookie

    struct Variant: Sendable, CustomTestStringConvertible {
        let name: String
        let probe: Probe
        let source: IPAddress
        let port: UInt16
        var testDescription: String { name }
    }

    static let base = Probe(initiatorCookie: 0x0102_0304_0506_0708, capabilities: .ted, identity: initiatorIdentity,
                            summary: p)

    static func summary(_ text: String) -> Probe {
        Probe(initiatorCookie: base.initiatorCookie, capabilities: base.capabilities, identity: base.identity,
              summary: packet(text))
    }

    /// The base probe and, after it, each one field changed.
    static let variants: [Variant] = {
        let source = ip("10.1.0.5"), port: UInt16 = 40000
        func v(_ name: String, _ probe: Probe, source: IPAddress = source, port: UInt16 = port) -> Variant {
            Variant(name: name, probe: probe, source: source, port: port)
        }
        let proxy = ProxyAddress(pattern: pattern("10.1.0.0/16"), proto: .tcp)
        func withProxy(_ proxy: ProxyAddress?) -> Probe {
            Probe(initiatorCookie: base.initiatorCookie, capabilities: base.capabilities, identity: base.identity,
                  proxyAddress: proxy, summary: base.summary)
        }
        func withIdentity(_ identity: Identity) -> Probe {
            Probe(initiatorCookie: base.initiatorCookie, capabilities: base.capabilities, identity: identity,
                  summary: base.summary)
        }
        return [
            v("base", base),
            v("initiator cookie", Probe(initiatorCookie: base.initiatorCookie + 1, capabilities: base.capabilities,
                                        identity: base.identity, summary: base.summary)),
            v("capabilities", Probe(initiatorCookie: base.initiatorCookie, capabilities: .multipleEntries,
                                    identity: base.identity, summary: base.summary)),
            v("identity address", withIdentity(Identity(address: ip("198.51.100.9"), port: 500))),
            v("identity port", withIdentity(Identity(address: initiatorIdentity.address, port: 4500))),
            v("identity port 0 (means 500)", withIdentity(Identity(address: initiatorIdentity.address, port: 0))),
            v("identity IPv6", withIdentity(initiatorIdentity6)),
            v("proxy address", withProxy(proxy)),
            v("proxy address pattern", withProxy(ProxyAddress(pattern: pattern("10.1.0.0/24"), proto: .tcp))),
            v("proxy address protocol", withProxy(ProxyAddress(pattern: proxy.pattern, proto: .any))),
            v("summary protocol", summary("udp 10.1.0.5:40000 10.2.0.7:443")),
            v("summary source port", summary("tcp 10.1.0.5:40001 10.2.0.7:443")),
            v("summary destination port", summary("tcp 10.1.0.5:40000 10.2.0.7:444")),
            v("summary without source port", summary("tcp 10.1.0.5 10.2.0.7:443")),
            v("summary source port 0", summary("tcp 10.1.0.5:0 10.2.0.7:443")),
            v("summary without destination port", summary("tcp 10.1.0.5:40000 10.2.0.7")),
            v("summary source address", summary("tcp 10.1.0.6:40000 10.2.0.7:443")),
            v("summary destination address", summary("tcp 10.1.0.5:40000 10.2.0.8:443")),
            v("summary IPv6", summary("tcp [2001:db8:1::5]:40000 [2001:db8:2::7]:443")),
            v("datagram source address", base, source: ip("10.1.0.6")),
            v("datagram source IPv6", base, source: ip("2001:db8:1::5")),
            v("datagram source port", base, port: 40001),
            v("datagram source port 500", base, port: 500),
        ]
    }()

    static func responderCookie(_ variant: Variant, secret: CookieSecret = secret) throws -> Cookie {
        var settings = generousResponderSettings()
        settings.secret = secret
        var responder = Responder(policy: policy("permit ip any any"), identity: responderIdentity, settings: settings)
        let reply = try #require(responder.received(TEDCodec.encode(.probe(variant.probe)), from: variant.source,
                                                    port: variant.port, now: t0).replyBytes, "\(variant.name)")
        guard case .response(let response) = try TEDCodec.decode(reply) else {
            Issue.record("\(variant.name): not a response")
            return 0
        }
        #expect(response.initiatorCookie == variant.probe.initiatorCookie)
        return response.responderCookie
    }

    @Test(arguments: variants.dropFirst())
    func theResponderCookieChangesWithEachField(_ variant: Variant) throws {
        let base = try Self.responderCookie(Self.variants[0])
        #expect(try Self.responderCookie(variant) != base)
    }

    @Test func theResponderCookieIsAPureNonZeroFunctionOfProbeSourceAndSecret() throws {
        var seen = Set<Cookie>()
        for variant in Self.variants {
            let cookie = try Self.responderCookie(variant)
            #expect(cookie != 0)
            #expect(try Self.responderCookie(variant) == cookie, "\(variant.name): a retransmission gets the same cookie")
            #expect(try Self.responderCookie(variant, secret: CookieSecret(k0: 1, k1: 2)) != cookie, "\(variant.name)")
            seen.insert(cookie)
        }
        #expect(seen.count == Self.variants.count)
    }
}
