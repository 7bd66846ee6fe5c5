import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// The responder and initiator against a hostile network: identities that are never peers,
/// reflection towards one victim, and amplification.
@Suite struct HostileNetworkTests {
    let policy40 = policy(lines: (0..<40).map { "permit tcp 10.2.\($0).0/24 10.1.0.0/16" })
    let summary = packet("tcp 10.1.0.5:1 10.2.7.7:443")

    func probe(identity: String, cookie: Cookie = 9, padding: Int? = nil, summary: Packet? = nil) -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: cookie, identity: Identity(address: ip(identity), port: 500),
                                     summary: summary ?? self.summary, padding: padding)))
    }

    static let refused: [(String, IdentityRefusal)] = [
        ("0.0.0.0", .unspecified), ("0.1.2.3", .unspecified), ("::", .unspecified),
        ("127.0.0.1", .loopback), ("127.255.0.9", .loopback), ("::1", .loopback),
        ("224.0.0.1", .multicast), ("239.255.255.255", .multicast), ("ff02::1", .multicast),
        ("255.255.255.255", .broadcast), ("198.51.100.255", .broadcast),
        ("169.254.1.1", .linkLocal), ("fe80::1", .linkLocal), ("febf::1", .linkLocal),
        ("198.51.100.2", .ownAddress), ("::ffff:127.0.0.1", .loopback), ("::ffff:198.51.100.2", .ownAddress),
    ]
    static let accepted = ["1.0.0.0", "126.255.255.255", "128.0.0.0", "223.255.255.255", "240.0.0.1",
                           "255.255.255.254", "169.253.255.255", "169.255.0.0", "198.51.100.254",
                           "fec0::1", "fe7f::1", "feff::1", "::2", "2001:db8::1", "fe00::1"]
    let check = PeerAddressCheck(own: [ip("198.51.100.2")], broadcasts: [ip("198.51.100.255")])

    /// The check takes addresses as the engines pass them, unmapped once at the edge
    /// (`responderNeverAnswersARefusedIdentity` sends the mapped ones through a responder).
    @Test(arguments: refused)
    func specialIdentitiesAreRefused(address: String, reason: IdentityRefusal) {
        #expect(check.refusal(of: ip(address).unmappedV4) == reason)
    }

    /// An identity's port must be one a TED peer can use: 500 (0 means 500) or an
    /// unprivileged one; never a well-known service's (DNS, NTP, ...), whatever the address.
    @Test(arguments: [(UInt16(0), true), (500, true), (1024, true), (4500, true), (65535, true),
                      (1, false), (53, false), (123, false), (499, false), (501, false), (1023, false)])
    func onlyPortsATEDPeerCanUseAreAnswered(port: UInt16, answered: Bool) {
        var responder = Responder(policy: policy40, identity: responderIdentity, settings: generousResponderSettings())
        let datagram = TEDCodec.encode(.probe(Probe(initiatorCookie: 9, identity: Identity(address: ip("198.51.100.7"), port: port),
                                                    summary: summary)))
        let action = responder.received(datagram, from: ip("10.1.0.5"), port: 1, now: t0)
        #expect(answered ? action.replyBytes != nil : action == .drop(.refusedIdentity(.privilegedPort)), "\(port)")
    }

    /// An IPv4-mapped identity is its IPv4 address everywhere: one target bucket for both forms.
    @Test func aMappedIdentitySharesItsIPv4TargetBucket() {
        var settings = generousResponderSettings()
        settings.perTargetRate = RateLimit(perSecond: 0, burst: 2)
        var responder = Responder(policy: policy40, identity: responderIdentity, settings: settings)
        let actions = ["198.51.100.7", "::ffff:198.51.100.8", "198.51.100.9"].map {
            responder.received(probe(identity: $0), from: ip("10.1.0.5"), port: 1, now: t0)
        }
        #expect(actions.prefix(2).allSatisfy { $0.replyBytes != nil } && actions[2] == .drop(.rateLimitedTarget))
        guard case .reply(_, let to, _, _) = actions[1] else { return }
        #expect(to == ip("198.51.100.8"))
    }

    @Test(arguments: accepted)
    func ordinaryIdentitiesAreAccepted(address: String) {
        #expect(check.refusal(of: ip(address)) == nil)
    }

    @Test func loopbackIsAllowedOnlyWhenTedListensThere() {
        let onLoopback = PeerAddressCheck(own: [ip("127.0.0.1")], allowLoopback: true)
        #expect(onLoopback.refusal(of: ip("127.0.0.1")) == nil)
        #expect(onLoopback.refusal(of: ip("::1")) == nil)
        #expect(onLoopback.refusal(of: ip("0.0.0.0")) == .unspecified)
    }

    @Test(arguments: refused)
    func responderNeverAnswersARefusedIdentity(address: String, reason: IdentityRefusal) {
        var settings = generousResponderSettings()
        settings.peerCheck = check
        var responder = Responder(policy: policy40, identity: responderIdentity, settings: settings)
        #expect(responder.received(probe(identity: address), from: ip("10.1.0.5"), port: 1, now: t0)
            == .drop(.refusedIdentity(reason)))
        #expect(responder.counters.drops[.refusedIdentity(reason)] == 1)
        #expect(responder.received(probe(identity: "198.51.100.7"), from: ip("10.1.0.5"), port: 1, now: t0).replyBytes != nil)
    }

    @Test func initiatorIgnoresAResponseFromARefusedIdentityAndKeepsWaiting() throws {
        var settings = DiscoverySettings()
        settings.peerCheck = check
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                  settings: settings)
        var rng = SeededRNG(seed: 1)
        let sent = try #require(initiator.packet(summary, now: t0, rng: &rng).sentProbe)
        func answer(from identity: String) -> ByteBuffer {
            TEDCodec.encode(.response(Response(initiatorCookie: sent.cookie, responderCookie: 5,
                                               identity: Identity(address: ip(identity), port: 0),
                                               entries: [proxy("tcp 10.1.0.0/16 10.2.0.0/16")])))
        }
        #expect(initiator.received(answer(from: "255.255.255.255"), from: ip("10.2.7.7"), port: 500, now: t0)
            == .ignored(.refusedIdentity))
        #expect(initiator.received(answer(from: "198.51.100.2"), from: ip("10.2.7.7"), port: 500, now: t0)
            == .ignored(.refusedIdentity))
        #expect(initiator.pendingCount == 1)
        guard case .discovered = initiator.received(answer(from: "198.51.100.9"), from: ip("10.2.7.7"), port: 500, now: t0)
        else {
            Issue.record("a genuine answer after refused ones must still win")
            return
        }
    }

    /// 5,000 probes from 50 source /24s naming one victim: the victim's /24 gets the target
    /// bucket's burst, and nothing more, within the same instant.
    @Test func reflectionIsBoundedPerTarget() {
        var settings = generousResponderSettings()
        settings.perSourceRate = RateLimit(perSecond: 1000, burst: 1000)
        settings.perTargetRate = RateLimit(perSecond: 10, burst: 20)
        var responder = Responder(policy: policy40, identity: responderIdentity, settings: settings)
        var replies = 0
        for index in 0..<5_000 {
            let source = IPAddress(v4: 0x0a00_0000 | UInt32(index % 50) << 8 | 5)
            let victim = "203.0.113.\(index % 200 + 1)"
            if responder.received(probe(identity: victim, cookie: UInt64(index + 1)), from: source, port: 1, now: t0)
                .replyBytes != nil { replies += 1 }
        }
        #expect(replies == 20)
        #expect(responder.counters.drops[.rateLimitedTarget] == 4_980)
        // Another target prefix is unaffected, and the victim's bucket refills with time.
        #expect(responder.received(probe(identity: "198.51.100.7"), from: ip("10.9.0.1"), port: 1, now: t0).replyBytes != nil)
        #expect(responder.received(probe(identity: "203.0.113.9"), from: ip("10.9.0.1"), port: 1, now: at(200_000_000))
            .replyBytes != nil)
        #expect(responder.trackedTargets == 2)
    }

    /// Issue 28's attack, with the daemon's defaults and challenges on: 20,000 probes in
    /// 1 s from one host naming one victim, each from a source of its own /24 (no source
    /// bucket ever refuses), some echoing made-up cookies. Answers and challenges together
    /// reach the victim's /24 no more than its target bucket allows: burst + rate x 1 s.
    @Test func answersAndChallengesTogetherStayWithinTheTargetBound() throws {
        let settings = ResponderSettings(secret: secret, challenges: true)
        var responder = Responder(policy: policy40, identity: responderIdentity, settings: settings)
        var rng = SeededRNG(seed: 28)
        var answers = 0, challenges = 0
        for index in 0..<20_000 {
            let source = IPAddress(v4: 0x0a00_0000 | UInt32(index) << 8 | 5)
            let victim = "203.0.113.\(index % 250 + 1)"
            let forged = index % 4 == 0 ? ReturnCookie((0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }) : nil
            let datagram = TEDCodec.encode(.probe(Probe(initiatorCookie: UInt64(index + 1),
                                                        identity: Identity(address: ip(victim), port: 500), summary: summary,
                                                        padding: 64, cookie: forged)))
            switch responder.received(datagram, from: source, port: 1, now: t0 + .microseconds(Int64(index) * 50)) {
            case .reply(_, _, _, .challenge): challenges += 1
            case .reply: answers += 1
            case .drop: break
            }
        }
        let bound = settings.perTargetRate.burst + settings.perTargetRate.perSecond
        #expect(answers + challenges <= bound, "\(answers) answers, \(challenges) challenges")
        #expect(answers > 0 && challenges > 0, "the bound is shared, not spent by one kind")
        #expect(responder.counters.cookiesRefused[.forged] == 5_000)
    }

    /// A response is never more than three times its probe; entry 1 always fits.
    @Test(arguments: [nil, 0, 50, 100, 200, 1000])
    func responsesStayWithinThreeTimesTheProbe(padding: Int?) throws {
        for family in [IPAddress.Family.v4, .v6] {
            var settings = generousResponderSettings(offerAdditionalEntries: true)
            settings.maxEntries = 16
            let lines = family == .v4 ? (0..<40).map { "permit udp 10.2.\($0).0/24 10.1.0.0/16" }
                                      : (0..<40).map { "permit udp 2001:db8:2:\($0)::/64 2001:db8:1::/48" }
            let p = family == .v4 ? packet("udp 10.1.0.5:1 10.2.7.7:53") : packet("udp [2001:db8:1::5]:1 [2001:db8:2:7::7]:53")
            for identity in [responderIdentity, responderIdentity6] {
                var responder = Responder(policy: policy(lines: lines), identity: identity, settings: settings)
                let datagram = probe(identity: "198.51.100.1", padding: padding, summary: p)
                let reply = try #require(responder.received(datagram, from: ip("10.1.0.5"), port: 1, now: t0).replyBytes)
                #expect(reply.readableBytes <= 3 * datagram.readableBytes)
                guard case .response(let response) = try TEDCodec.decode(reply) else { throw HostileNetworkTestError.unexpectedMessage }
                #expect(response.entries.count >= 1)
                // One more entry would have broken the bound (or the cap of 16).
                let entrySize = family == .v4 ? 28 : 76
                #expect(response.entries.count == 16 || reply.readableBytes + entrySize > 3 * datagram.readableBytes)
            }
        }
    }

    /// The amplification boundary, byte for byte: 3 * probe size decides the last entry.
    @Test func entryCountFollowsTheBoundAtTheByte() {
        // A v4 response from a v4 identity is 72 bytes plus 28 per entry.
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 100, identity: .v4, family: .v4) == 8)  // 300 bytes
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 108, identity: .v4, family: .v4) == 9)  // 324: 9 fit exactly
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 107, identity: .v4, family: .v4) == 8)  // 321 < 324
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 10, identity: .v6, family: .v6) == 1)   // entry 1 always
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 4096, identity: .v6, family: .v6) == 16)
    }

    /// The initiator pads exactly enough for what it wants: vector 7's probe asks for 16.
    @Test func initiatorPadsForTheEntriesItWants() throws {
        for wanted in [1, 2, 8, 16] {
            var settings = DiscoverySettings()
            settings.wantedEntries = wanted
            var initiator = Initiator(policy: policy("permit udp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                      settings: settings)
            var rng = SeededRNG(seed: 3)
            let sent = try #require(initiator.packet(packet("udp 10.1.0.5:1 10.2.7.7:53"), now: t0, rng: &rng).sentProbe)
            guard case .probe(let decoded) = try TEDCodec.decode(sent.bytes) else { throw HostileNetworkTestError.unexpectedMessage }
            let room = TEDCodec.entriesWithinAmplificationBound(probeSize: sent.bytes.readableBytes, identity: .v6, family: .v4)
            #expect(room >= wanted)
            #expect(wanted < 16 || decoded.padding != nil)
            #expect(wanted > 1 || decoded.padding == nil)
            if let padding = decoded.padding, padding > 0 {
                // One byte less of padding would not have been enough.
                #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: sent.bytes.readableBytes - 1, identity: .v6,
                                                                 family: .v4) < wanted)
            }
        }
    }
}
enum HostileNetworkTestError: Error { case unexpectedMessage }
