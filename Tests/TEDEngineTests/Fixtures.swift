import NIOCore
import TEDModel
import TEDTestSupport
import TEDWire
@testable import TEDEngine

/// A generator that first says the given numbers (to choose cookies), then goes on seeded.
struct ScriptedRNG: RandomNumberGenerator {
    private var script: [UInt64]
    private var rest = SeededRNG(seed: 42)

    init(_ script: [UInt64]) { self.script = script.reversed() }

    mutating func next() -> UInt64 { script.popLast() ?? rest.next() }
}

/// A fixed start so no test depends on the real clock.
let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

func at(_ milliseconds: Int64) -> NIODeadline { t0 + .milliseconds(milliseconds) }

func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { preconditionFailure("bad test address \(text)") }
    return address
}

func pattern(_ text: String) -> AddressPattern {
    guard let pattern = AddressPattern(text) else { preconditionFailure("bad test pattern \(text)") }
    return pattern
}

func packet(_ text: String) -> Packet {
    do { return try Packet(parsing: text) } catch { preconditionFailure("bad test packet \(text): \(error)") }
}

func policy(_ lines: String...) -> Policy { policy(lines: lines) }

func policy(lines: [String]) -> Policy {
    do { return try Policy(lines: lines) } catch { preconditionFailure("bad test policy: \(error)") }
}

func proxy(_ entry: String, as role: Role = .initiator, family: IPAddress.Family = .v4) -> Proxy {
    do {
        guard let proxy = try ACLParser.parseSelector(entry).proxy(as: role, family: family) else {
            preconditionFailure("no \(family) proxy for \(entry)")
        }
        return proxy
    } catch {
        preconditionFailure("bad test entry \(entry): \(error)")
    }
}

let initiatorIdentity = Identity(address: ip("198.51.100.1"), port: 500)
let responderIdentity = Identity(address: ip("198.51.100.2"), port: 0)
let initiatorIdentity6 = Identity(address: ip("2001:db8:ffff::1"), port: 4500)
let responderIdentity6 = Identity(address: ip("2001:db8:ffff::2"), port: 0)
let secret = CookieSecret(k0: 0x0123_4567_89ab_cdef, k1: 0xfedc_ba98_7654_3210)

/// Responder settings with limits far above what a test sends unless it says otherwise.
func generousResponderSettings(offerAdditionalEntries: Bool = false) -> ResponderSettings {
    ResponderSettings(secret: secret, perSourceRate: RateLimit(perSecond: 1_000_000, burst: 1_000_000),
                      perTargetRate: RateLimit(perSecond: 1_000_000, burst: 1_000_000),
                      globalRate: RateLimit(perSecond: 1_000_000, burst: 1_000_000),
                      offerAdditionalEntries: offerAdditionalEntries)
}

extension InitiatorAction {
    var sentProbe: OutgoingProbe? {
        if case .send(let probe) = self { return probe }
        return nil
    }

    var discovery: Discovery? {
        if case .discovered(let discovery) = self { return discovery }
        return nil
    }

    var failure: Failure? {
        if case .failed(let failure) = self { return failure }
        return nil
    }
}

extension ResponderAction {
    var replyBytes: ByteBuffer? {
        if case .reply(let bytes, _, _, _) = self { return bytes }
        return nil
    }
}

/// Feeds P to the initiator and, when it probes, the probe to the responder and the answer back.
func exchange(_ initiator: inout Initiator, _ responder: inout Responder, _ p: Packet,
              now: NIODeadline, rng: inout SeededRNG) -> InitiatorAction? {
    guard let probe = initiator.packet(p, now: now, rng: &rng).sentProbe else { return nil }
    guard let bytes = responder.received(probe.bytes, from: probe.source, port: probe.sourcePort,
                                         now: now).replyBytes else { return nil }
    return initiator.received(bytes, from: responder.identity.address, port: 500, now: now + .milliseconds(20))
}

/// The challenge a responder's action sends, if it sends one.
func challenge(_ action: ResponderAction) -> Challenge? {
    guard case .reply(let bytes, _, _, .challenge) = action, case .challenge(let challenge) = try? TEDCodec.decode(bytes) else { return nil }
    return challenge
}

/// Whether a responder's action sends a response.
func isResponse(_ action: ResponderAction) -> Bool {
    guard case .reply(let bytes, _, _, let kind) = action, kind != .challenge, case .response = try? TEDCodec.decode(bytes) else { return false }
    return true
}
