import NIOCore
import TEDModel
import TEDWire

/// Return-routability cookies (IKEv2's COOKIE, RFC 7296 section 2.6; QUIC's Retry): what
/// a responder puts in a challenge and checks when a probe echoes it, without state.
///
/// A cookie is 16 bytes: the time slot it was made in (8 bytes, big-endian) and a MAC
/// (8 bytes), SipHash-2-4 of the identity address and port under a key of the slot's own.
/// The slot key is itself SipHash of the slot number under the injected secret, so every
/// slot has its own key and no key has to be stored or rotated by hand: a cookie is good
/// in the slot it was made in and the next one (10 to 20 s with 10-second slots), never
/// older, never from a future slot.
///
/// Only the identity can have read the cookie (the challenge goes there), so a probe that
/// echoes it proves that whoever sent it receives what is sent to the identity: a spoofer
/// off the path never learns a cookie. The cookie names the identity, not one probe, so
/// the identity's initiator may echo one it learned from a challenge another probe
/// provoked (a flood naming it); what a captured cookie can be replayed into is bounded by
/// the identity prefix's proven budget, and every answer goes to the identity.
struct ReturnCookies: Sendable {
    /// Why an echoed cookie is not taken.
    enum Verdict: Hashable, Sendable {
        case valid
        case refused(CookieRefusal)
    }

    static let size = 16

    private let secret: CookieSecret
    private let slotNanoseconds: UInt64
    /// The keys of the last two slots asked for: under a flood every cookie checked costs
    /// one SipHash, not three.
    private var keys: [(slot: UInt64, key: CookieSecret)] = []

    init(secret: CookieSecret, slot: TimeAmount) {
        self.secret = secret
        slotNanoseconds = UInt64(max(slot.nanoseconds, 1_000_000))
    }

    private func slot(at now: NIODeadline) -> UInt64 { now.uptimeNanoseconds / slotNanoseconds }

    /// The cookie for `identity` at `now` (never nil: 16 bytes always make a `ReturnCookie`).
    mutating func make(identity: Identity, now: NIODeadline) -> ReturnCookie? {
        let slot = slot(at: now)
        let mac = Self.mac(key: key(for: slot), identity: identity)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        for value in [slot, mac] {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }
        return ReturnCookie(bytes)
    }

    /// Checks an echoed cookie.
    mutating func verify(_ cookie: ReturnCookie, identity: Identity, now: NIODeadline) -> Verdict {
        guard cookie.bytes.count == Self.size else { return .refused(.forged) }
        let slot = cookie.bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let mac = cookie.bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let current = self.slot(at: now)
        guard slot <= current else { return .refused(.forged) }
        guard current - slot <= 1 else { return .refused(.stale) }
        guard mac == Self.mac(key: key(for: slot), identity: identity) else { return .refused(.forged) }
        return .valid
    }

    /// The slot's own key: SipHash of the slot number under the secret, twice.
    private mutating func key(for slot: UInt64) -> CookieSecret {
        if let known = keys.first(where: { $0.slot == slot }) { return known.key }
        let key = Self.derive(secret, slot)
        keys = (keys.suffix(1) + [(slot, key)])
        return key
    }

    private static func derive(_ secret: CookieSecret, _ slot: UInt64) -> CookieSecret {
        func half(_ label: UInt8) -> UInt64 {
            var hash = SipHash24(k0: secret.k0, k1: secret.k1)
            hash.append(label)
            hash.append(bigEndian: slot)
            return hash.finalize()
        }
        return CookieSecret(k0: half(1), k1: half(2))
    }

    private static func mac(key: CookieSecret, identity: Identity) -> UInt64 {
        var hash = SipHash24(k0: key.k0, k1: key.k1)
        hash.append(identity.address.family.rawValue)
        hash.append(identity.address)
        hash.append(bigEndian: identity.effectivePort)
        return hash.finalize()
    }
}

/// Why an echoed cookie was refused.
public enum CookieRefusal: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Made more than one slot ago.
    case stale
    /// Not made by this responder for this identity (or of a size or slot it never makes).
    case forged

    public var description: String { rawValue }
}
