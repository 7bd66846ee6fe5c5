import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

@Suite struct ResponderTests {
    let sitePolicy = policy(
        "deny tcp 10.2.9.0/24 10.1.0.0/16",
        "permit tcp 10.2.0.0/16 eq 443 10.1.0.0/16",
        "permit udp 2001:db8:2::/48 eq 53 2001:db8:1::/48",
        "permit udp 10.2.0.0/16 10.1.0.0/16",
        "deny ip 10.2.0.0/16 10.1.5.0/24",
        "permit ip 10.2.0.0/16 10.1.0.0/16",
        "permit ip 10.2.0.0/16 10.1.0.0/16",
        "permit icmp 10.2.0.0/16 10.1.0.0/16 8")

    func makeResponder(_ settings: ResponderSettings = generousResponderSettings()) -> Responder {
        Responder(policy: sitePolicy, identity: responderIdentity, settings: settings)
    }

    func probe(_ summary: String, cookie: Cookie = 0x0102_0304_0506_0708, identity: Identity = initiatorIdentity,
               capabilities: Capabilities = .ted) -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: cookie, capabilities: capabilities, identity: identity,
                                     summary: packet(summary))))
    }

    func decodeResponse(_ action: ResponderAction) throws -> Response {
        let bytes = try #require(action.replyBytes)
        guard case .response(let response) = try TEDCodec.decode(bytes) else {
            throw ResponderTestError.notAResponse
        }
        return response
    }

    enum ResponderTestError: Error { case notAResponse }

    @Test func answersTheMatchingEntryToTheIdentity() throws {
        var responder = makeResponder()
        let action = responder.received(probe("tcp 10.1.0.5:40000 10.2.0.7:443"), from: ip("10.1.0.5"),
                                        port: 40000, now: t0)
        guard case .reply(_, let to, let port, _) = action else {
            Issue.record("no reply: \(action)")
            return
        }
        #expect(to == initiatorIdentity.address && port == 500)
        let response = try decodeResponse(action)
        #expect(response.initiatorCookie == 0x0102_0304_0506_0708 && response.responderCookie != 0)
        #expect(response.identity == responderIdentity)
        // The entry's own share holding P: entry 1 (deny tcp 10.2.9.0/24) is cut away.
        #expect(response.entries == [proxy("tcp 10.1.0.0/16 10.2.0.0/21 eq 443")])
        #expect(responder.counters.replies == 1 && responder.counters.received == 1)
    }

    @Test func repliesGoToTheIdentityPortWithZeroMeaning500() throws {
        var responder = makeResponder()
        for (identityPort, expected) in [(UInt16(0), UInt16(500)), (4500, 4500)] {
            let identity = Identity(address: ip("192.0.2.1"), port: identityPort)
            let action = responder.received(probe("tcp 10.1.0.5:1 10.2.0.7:443", identity: identity),
                                            from: ip("10.1.0.5"), port: 1, now: t0)
            #expect(action == .reply(bytes: try #require(action.replyBytes), to: ip("192.0.2.1"), port: expected, kind: .answer))
        }
    }

    @Test func retransmittedProbesGetByteIdenticalAnswers() throws {
        var responder = makeResponder()
        let bytes = probe("tcp 10.1.0.5:40000 10.2.0.7:443")
        let first = try #require(responder.received(bytes, from: ip("10.1.0.5"), port: 40000, now: t0).replyBytes)
        let again = try #require(responder.received(bytes, from: ip("10.1.0.5"), port: 40000, now: at(2500)).replyBytes)
        #expect(first == again)
        // A restarted responder with the same secret answers the same.
        var restarted = makeResponder()
        #expect(restarted.received(bytes, from: ip("10.1.0.5"), port: 40000, now: at(9)).replyBytes == first)
        // Another initiator cookie, source or secret gives another responder cookie.
        var otherSecret = Responder(policy: sitePolicy, identity: responderIdentity,
                                    settings: ResponderSettings(secret: CookieSecret(k0: 1, k1: 2)))
        let cookies = try [
            decodeResponse(responder.received(bytes, from: ip("10.1.0.5"), port: 40000, now: t0)),
            decodeResponse(responder.received(probe("tcp 10.1.0.5:40000 10.2.0.7:443", cookie: 5),
                                              from: ip("10.1.0.5"), port: 40000, now: t0)),
            decodeResponse(responder.received(bytes, from: ip("10.1.0.6"), port: 40000, now: t0)),
            decodeResponse(otherSecret.received(bytes, from: ip("10.1.0.5"), port: 40000, now: t0)),
        ].map(\.responderCookie)
        #expect(Set(cookies).count == 4 && !cookies.contains(0))
    }

    @Test(arguments: [
        ("tcp 10.1.0.5:1 10.2.9.7:443", DropReason.deny),
        ("tcp 10.1.5.5:1 10.2.0.7:80", .deny),
        ("tcp 10.9.0.5:1 10.2.0.7:443", .noMatch),
        ("udp [2001:db8:9::1]:5 [2001:db8:2::7]:53", .noMatch),
    ])
    func staysSilentOnNoMatchAndDeny(summary: String, expected: DropReason) {
        var responder = makeResponder()
        let action = responder.received(probe(summary), from: packet(summary).source, port: 1, now: t0)
        #expect(action == .drop(expected))
        #expect(responder.counters.drops == [expected: 1] && responder.counters.replies == 0)
    }

    @Test func neighboursOfTheSilentCasesAreAnswered() {
        var responder = makeResponder()
        for summary in ["tcp 10.1.0.5:1 10.2.8.7:443", "tcp 10.1.5.5:1 10.2.0.7:443", "tcp 10.1.0.5:1 10.2.0.7:80",
                        "udp [2001:db8:1::1]:5 [2001:db8:2::7]:53"] {
            #expect(responder.received(probe(summary), from: packet(summary).source, port: 1, now: t0).replyBytes != nil,
                    "\(summary)")
        }
    }

    /// The issue's case on the responder: a deny of part of a permit above it. The answer
    /// is the permit's own share holding P, so the peer's proposal (inside the answer)
    /// lies inside one of the responder's children and never in the denied part.
    @Test func theAnswerLeavesOutWhatAnEarlierEntryOwns() throws {
        var responder = Responder(policy: policy("deny ip 198.18.2.128/25 198.18.1.0/24", "permit ip 198.18.2.0/24 198.18.1.0/24"),
                                  identity: responderIdentity, settings: generousResponderSettings())
        let answer = try decodeResponse(responder.received(probe("udp 198.18.1.10:5 198.18.2.20:53"), from: ip("198.18.1.10"),
                                                           port: 500, now: t0))
        #expect(answer.entries == [proxy("ip 198.18.1.0/24 198.18.2.0/25")])
        #expect(responder.received(probe("udp 198.18.1.10:5 198.18.2.200:53"), from: ip("198.18.1.10"), port: 500, now: t0)
            == .drop(.deny))
    }

    /// A permit whose share has no piece for P (a protocol `any` keeps only by name below a
    /// one-protocol entry) is not answered, and the probe passes on.
    @Test func aPacketNoPieceHoldsIsUnservable() throws {
        var responder = Responder(policy: policy("deny tcp any any eq 23", "permit ip 198.18.2.0/24 198.18.1.0/24"),
                                  identity: responderIdentity, settings: generousResponderSettings())
        #expect(responder.received(probe("ipinip 198.18.1.10 198.18.2.20"), from: ip("198.18.1.10"), port: 500, now: t0)
            == .drop(.unservable))
        #expect(DropReason.unservable.passesOn)
        // A probe this gateway covers but will not answer now stops here.
        #expect(![DropReason.rateLimitedSource, .rateLimitedTarget, .rateLimitedGlobal].contains { $0.passesOn })
        let tcp = try decodeResponse(responder.received(probe("tcp 198.18.1.10:5000 198.18.2.20:22"), from: ip("198.18.1.10"),
                                                        port: 500, now: t0))
        #expect(tcp.entries == [proxy("tcp 198.18.1.0/24 range 24 65535 198.18.2.0/24")])
    }

    @Test func icmpTypeStaysOnTheInitiatorSide() throws {
        var responder = Responder(policy: policy("permit icmp 10.2.0.0/16 10.1.0.0/16 8"),
                                  identity: responderIdentity, settings: generousResponderSettings())
        let echo = try decodeResponse(responder.received(probe("icmp 10.1.0.5:8 10.2.0.7:0"), from: ip("10.1.0.5"),
                                                         port: 500, now: t0))
        let entry = try #require(echo.entries.first)
        #expect(entry.proto == .icmp && entry.initiatorSide.ports == .single(8) && entry.responderSide.ports == .all)
        #expect(responder.received(probe("icmp 10.1.0.5:0 10.2.0.7:0"), from: ip("10.1.0.5"), port: 500, now: t0)
            == .drop(.noMatch))
    }

    @Test func additionalEntriesFollowPolicyOrderSameFamilyOnRequest() throws {
        var offering = makeResponder(generousResponderSettings(offerAdditionalEntries: true))
        let summary = "tcp 10.1.0.5:40000 10.2.0.7:443"
        let full = try decodeResponse(offering.received(probe(summary), from: ip("10.1.0.5"), port: 1, now: t0))
        // Matched entry's share first; then the other IPv4 permits that are all their own,
        // in order: the udp one (no earlier entry shares its traffic). The ip and icmp ones
        // lose parts to earlier entries, denies and the IPv6 entry are never offered.
        #expect(full.entries == [
            proxy("tcp 10.1.0.0/16 10.2.0.0/21 eq 443"),
            proxy("udp 10.1.0.0/16 10.2.0.0/16"),
        ])
        let v6 = try decodeResponse(offering.received(probe("udp [2001:db8:1::5]:9 [2001:db8:2::7]:53"),
                                                      from: ip("2001:db8:1::5"), port: 9, now: t0))
        #expect(v6.entries == [proxy("udp 2001:db8:1::/48 2001:db8:2::/48 eq 53", family: .v6)])
        // A probe that does not understand several entries gets one.
        let single = try decodeResponse(offering.received(probe(summary, capabilities: [.ipv6]),
                                                          from: ip("10.1.0.5"), port: 1, now: t0))
        #expect(single.entries.count == 1)
        // Off by default.
        var plain = makeResponder()
        #expect(try decodeResponse(plain.received(probe(summary), from: ip("10.1.0.5"), port: 1, now: t0))
            .entries.count == 1)
    }

    @Test(arguments: [(1, 1), (2, 2), (16, 16), (17, 16), (0, 1), (-3, 1)])
    func additionalEntriesAreCapped(maxEntries: Int, expected: Int) throws {
        let many = policy(lines: (0..<40).map { "permit tcp 10.2.\($0).0/24 10.1.0.0/16" })
        var settings = generousResponderSettings(offerAdditionalEntries: true)
        settings.maxEntries = maxEntries
        var responder = Responder(policy: many, identity: responderIdentity, settings: settings)
        // Padded so that the amplification bound allows all 16 (spec vector 7's size).
        let padded = TEDCodec.encode(.probe(Probe(initiatorCookie: 7, identity: initiatorIdentity,
                                                  summary: packet("tcp 10.1.0.5:1 10.2.7.7:443"), padding: 200)))
        let response = try decodeResponse(responder.received(padded, from: ip("10.1.0.5"), port: 1, now: t0))
        #expect(response.entries.count == expected)
        #expect(response.entries.first == proxy("tcp 10.1.0.0/16 10.2.7.0/24"))
    }

    @Test func disabledAndNonProbesAreDropped() {
        var settings = generousResponderSettings()
        settings.enabled = false
        var off = makeResponder(settings)
        #expect(off.received(probe("tcp 10.1.0.5:1 10.2.0.7:443"), from: ip("10.1.0.5"), port: 1, now: t0)
            == .drop(.disabled))
        var on = makeResponder()
        let response = TEDCodec.encode(.response(Response(initiatorCookie: 1, responderCookie: 2,
                                                          identity: responderIdentity,
                                                          entries: [proxy("ip any any")])))
        #expect(on.received(response, from: ip("10.1.0.5"), port: 500, now: t0) == .drop(.notAProbe))
        #expect(off.counters.drops == [.disabled: 1] && on.counters.drops == [.notAProbe: 1])
    }

    @Test func perSourcePrefixRateLimit() {
        var settings = generousResponderSettings()
        settings.perSourceRate = RateLimit(perSecond: 1, burst: 3)
        var responder = makeResponder(settings)
        func send(_ source: String, at time: NIODeadline) -> ResponderAction {
            responder.received(probe("tcp \(source):1 10.2.0.7:443"), from: ip(source), port: 1, now: time)
        }
        let burst = (0..<5).map { _ in send("10.1.0.5", at: t0) }
        #expect(burst.filter { $0.replyBytes != nil }.count == 3)
        #expect(burst.suffix(2).allSatisfy { $0 == .drop(.rateLimitedSource) })
        #expect(send("10.1.0.200", at: t0) == .drop(.rateLimitedSource))   // same /24
        #expect(send("10.1.1.5", at: t0).replyBytes != nil)                // another /24
        #expect(send("10.1.0.5", at: at(999)) == .drop(.rateLimitedSource))
        #expect(send("10.1.0.5", at: at(1000)).replyBytes != nil)          // one token per second
        #expect(send("10.1.0.5", at: at(1000)) == .drop(.rateLimitedSource))
        #expect(send("10.1.0.5", at: at(60_000)).replyBytes != nil)        // refilled, capped at burst
        #expect(responder.counters.drops[.rateLimitedSource] == 5 && responder.counters.replies == 6)
    }

    @Test func ipv6SourcesAreCountedPerSlash64() {
        var settings = generousResponderSettings()
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        var responder = makeResponder(settings)
        func send(_ source: String) -> ResponderAction {
            responder.received(probe("udp [\(source)]:9 [2001:db8:2::7]:53"), from: ip(source), port: 9, now: t0)
        }
        #expect(send("2001:db8:1:0:aaaa::1").replyBytes != nil)
        #expect(send("2001:db8:1:0:bbbb::2") == .drop(.rateLimitedSource))
        #expect(send("2001:db8:1:1::1").replyBytes != nil)
    }

    @Test func globalRateLimitCapsAllSources() {
        var settings = generousResponderSettings()
        settings.globalRate = RateLimit(perSecond: 10, burst: 4)
        settings.perSourceRate = RateLimit(perSecond: 0, burst: 1)
        var responder = makeResponder(settings)
        var actions: [ResponderAction] = []
        for host in 0..<10 {
            actions.append(responder.received(probe("tcp 10.1.\(host).5:1 10.2.0.7:443"), from: ip("10.1.\(host).5"),
                                              port: 1, now: t0))
        }
        #expect(actions.prefix(4).allSatisfy { $0.replyBytes != nil })
        #expect(actions.dropFirst(4).allSatisfy { $0 == .drop(.rateLimitedGlobal) })
        // A source refused by the global bucket kept its own token.
        #expect(responder.received(probe("tcp 10.1.9.5:1 10.2.0.7:443"), from: ip("10.1.9.5"), port: 1,
                                   now: at(100)).replyBytes != nil)
        #expect(responder.counters.drops == [.rateLimitedGlobal: 6] && responder.counters.replies == 5)
    }

    @Test func trackedSourcesStayBoundedUnderAFlood() {
        var settings = generousResponderSettings()
        settings.maxTrackedSources = 64
        var responder = makeResponder(settings)
        var rng = SeededRNG(seed: 77)
        for index in 0..<5000 {
            let source = index.isMultiple(of: 2)
                ? IPAddress(v4: UInt32.random(in: 0...UInt32.max, using: &rng))
                : IPAddress(v6: UInt128(rng.next()) << 64 | UInt128(rng.next()))
            _ = responder.received(probe("tcp 10.1.0.5:1 10.2.0.7:443"), from: source, port: 1, now: at(Int64(index)))
            #expect(responder.trackedSources <= 64)
        }
        #expect(responder.trackedSources == 64)
        #expect(responder.counters.received == 5000)
    }

    @Test func garbageAndMutatedProbesNeverStopAValidAnswer() throws {
        var responder = makeResponder()
        var rng = SeededRNG(seed: 99)
        let valid = probe("tcp 10.1.0.5:40000 10.2.0.7:443")
        let expected = try #require(responder.received(valid, from: ip("10.1.0.5"), port: 1, now: t0).replyBytes)
        let validBytes = Array(valid.readableBytesView)
        for round in 0..<3000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                bytes = validBytes
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let index = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[index] ^= UInt8.random(in: 1...255, using: &rng)
                }
            default:
                bytes = Array(validBytes.prefix(Int.random(in: 0..<validBytes.count, using: &rng)))
            }
            _ = responder.received(ByteBuffer(bytes: bytes), from: ip("10.1.0.5"), port: 1, now: t0)
        }
        #expect(responder.counters.received == 3001)
        #expect(responder.counters.totalDrops + responder.counters.replies == 3001)
        #expect(responder.received(valid, from: ip("10.1.0.5"), port: 1, now: t0).replyBytes == expected)
    }
}
