import NIOCore
import TEDEngine
import TEDModel
import TEDWire
import FuzzDriver

#if canImport(Glibc)
import Glibc
#endif

/// The responder path end to end (decode, identity check, rate limits, lookup, encode) on
/// arbitrary bytes. Every reply must decode, answer the probe's cookie, and stay within
/// three times the datagram (spec section 1).
nonisolated(unsafe) var responder: Responder = {
    guard let policy = try? Policy(lines: [
        "deny tcp 198.18.2.0/24 eq 22 any", "permit ip 198.18.2.0 0.0.0.255 198.18.0.0 0.1.255.255",
        "permit udp 2001:db8:2::/48 2001:db8::/32 eq 53", "permit icmp 198.18.3.0/24 any",
        "permit tcp 198.18.4.5 0.0.255.0 any range 1000 2000"]) else { fatalError("the fuzz policy must parse") }
    let unlimited = RateLimit(perSecond: 1_000_000_000, burst: 1_000_000_000)
    let settings = ResponderSettings(secret: CookieSecret(k0: 1, k1: 2), perSourceRate: unlimited, perTargetRate: unlimited,
                                     globalRate: unlimited, maxTrackedSources: 64,
                                     peerCheck: PeerAddressCheck(own: [IPAddress("198.51.100.2")!]),
                                     offerAdditionalEntries: true)
    return Responder(policy: policy, identity: Identity(address: IPAddress("198.51.100.2")!, port: 500),
                     settings: settings)
}()
nonisolated(unsafe) var tick: Int64 = 0

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let datagram = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    tick += 1
    let source = IPAddress(v4: 0xc612_0100 | UInt32(truncatingIfNeeded: size & 0xff))
    guard case .reply(let bytes, let to, _) = responder.received(datagram, from: source, port: 40000,
                                                                 now: .uptimeNanoseconds(UInt64(tick) * 1000)) else { return 0 }
    precondition(bytes.readableBytes <= 3 * size, "amplification: \(bytes.readableBytes) > 3 * \(size)")
    guard case .probe(let probe) = try? TEDCodec.decode(datagram),
          case .response(let response) = try? TEDCodec.decode(bytes) else { preconditionFailure("reply does not decode") }
    precondition(response.initiatorCookie == probe.initiatorCookie && to == probe.identity.address, "reply to the wrong probe")
    return 0
}

runFuzzer(fuzzOne)
