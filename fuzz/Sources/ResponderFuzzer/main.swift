import NIOCore
import TEDEngine
import TEDModel
import TEDWire
import FuzzDriver

#if canImport(Glibc)
import Glibc
#endif

/// The responder path end to end (decode, identity check, rate limits, cookies, lookup,
/// encode) on arbitrary bytes. Every reply must decode, answer the probe's cookie, and stay
/// within three times the datagram (spec section 1); a challenge must be no larger than the
/// probe, and the probe echoing its cookie must be answered as an unlimited responder
/// answers the probe.
let policyLines = [
    "deny tcp 198.18.2.0/24 eq 22 any", "permit ip 198.18.2.0 0.0.0.255 198.18.0.0 0.1.255.255",
    "permit udp 2001:db8:2::/48 2001:db8::/32 eq 53", "permit icmp 198.18.3.0/24 any",
    "permit tcp 198.18.4.5 0.0.255.0 any range 1000 2000"]
let unlimited = RateLimit(perSecond: 1_000_000_000, burst: 1_000_000_000)

func makeResponder(challenging: Bool) -> Responder {
    guard let policy = try? Policy(lines: policyLines) else { fatalError("the fuzz policy must parse") }
    // The challenging one refuses every probe without a cookie (one token, never refilled),
    // so each probe it sees is challenged, and serves proven identities without limit.
    let limited = challenging ? RateLimit(perSecond: 0, burst: 1) : unlimited
    let settings = ResponderSettings(secret: CookieSecret(k0: 1, k1: 2), perSourceRate: limited, perTargetRate: unlimited,
                                     globalRate: unlimited, maxTrackedSources: 64,
                                     peerCheck: PeerAddressCheck(own: [IPAddress("198.51.100.2")!]),
                                     offerAdditionalEntries: true, challenges: challenging,
                                     challengeSecret: CookieSecret(k0: 3, k1: 4), challengeRate: unlimited,
                                     challengePairRate: unlimited, provenRate: unlimited, provenGlobalRate: unlimited)
    return Responder(policy: policy, identity: Identity(address: IPAddress("198.51.100.2")!, port: 500),
                     settings: settings)
}

nonisolated(unsafe) var responder = makeResponder(challenging: false)
nonisolated(unsafe) var challenger = makeResponder(challenging: true)
nonisolated(unsafe) var tick: Int64 = 0

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let datagram = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    tick += 1
    let now = NIODeadline.uptimeNanoseconds(UInt64(tick) * 1000)
    let source = IPAddress(v4: 0xc612_0100 | UInt32(truncatingIfNeeded: size & 0xff))
    let plain = responder.received(datagram, from: source, port: 40000, now: now)
    if case .reply(let bytes, let to, _, _) = plain {
        precondition(bytes.readableBytes <= 3 * size, "amplification: \(bytes.readableBytes) > 3 * \(size)")
        guard case .probe(let probe) = try? TEDCodec.decode(datagram),
              case .response(let response) = try? TEDCodec.decode(bytes) else { preconditionFailure("reply does not decode") }
        precondition(response.initiatorCookie == probe.initiatorCookie && to == probe.identity.address.unmappedV4,
                     "reply to the wrong probe")
    }
    challengeAndEcho(datagram, from: source, plain: plain)
    return 0
}

/// The same datagram to the responder that challenges every probe without a cookie: a probe
/// the unlimited responder answered is challenged, the challenge goes to the probe's
/// identity and is no larger than the probe, and the probe echoing its cookie (sent at once,
/// from the same source) gets a response when the unlimited responder gave one. Each input is one cookie slot (10 s) later than
/// the last, so that no cookie outlives its input. A cookie the fuzzer made up is no cookie.
func challengeAndEcho(_ datagram: ByteBuffer, from source: IPAddress, plain: ResponderAction) {
    let now = NIODeadline.uptimeNanoseconds(UInt64(tick) * 10_000_000_000)
    let action = challenger.received(datagram, from: source, port: 40000, now: now)
    guard case .reply(let bytes, let to, _, _) = action else {
        if case .reply = plain { preconditionFailure("a probe the unlimited responder answers is not challenged: \(action)") }
        return
    }
    guard case .probe(let probe) = try? TEDCodec.decode(datagram) else { preconditionFailure("a reply to no probe") }
    let reply = try? TEDCodec.decode(bytes)
    if case .response = reply { return }  // the challenger's one token
    guard case .challenge(let challenge) = reply else { preconditionFailure("challenge does not decode") }
    precondition(bytes.readableBytes <= datagram.readableBytes, "challenge larger than its probe")
    precondition(challenge.initiatorCookie == probe.initiatorCookie && to == probe.identity.address.unmappedV4,
                 "challenge to the wrong probe")
    let answer = challenger.received(TEDCodec.encode(.probe(probe.echoing(challenge.cookie))), from: source, port: 40000,
                                     now: now)
    guard case .reply = plain else { return }  // the echo meets the same lookup: no match, deny, unservable
    guard case .reply(let echoReply, _, _, _) = answer, case .response(let response) = try? TEDCodec.decode(echoReply),
          response.initiatorCookie == probe.initiatorCookie else {
        preconditionFailure("the echo of a good cookie is not answered: \(answer)")
    }
}

runFuzzer(fuzzOne)
