import NIOCore
import TEDModel
import TEDWire

/// Return-routability cookies (IKEv2's COOKIE, RFC 7296 section 2.6; QUIC's Retry): what
/// a responder puts in a challenge and checks when a probe echoes it, without state but a
/// bounded table of recent uses.
///
/// A cookie is 16 bytes: the time slot it was made in (8 bytes, big-endian) and a MAC
/// (8 bytes), SipHash-2-4 of the identity address and port, the probe's IP source and
/// initiator cookie under a key of the slot's own. The slot key is itself SipHash of the
/// slot number under the injected secret, so every slot has its own key and no key has to
/// be stored or rotated by hand: a cookie is good in the slot it was made in and the next
/// one (10 to 20 s with 10-second slots), never older, never from a future slot.
///
/// Only the identity can have read the cookie (the challenge goes there), so a probe that
/// echoes it proves that the identity's owner sent it, or at least sees what is sent to
/// it, and from the source it names: a spoofer that forges sources and identities in a
/// victim's prefix never learns a cookie.
struct ReturnCookies: Sendable {
    /// Why an echoed cookie is not taken.
    enum Verdict: Hashable, Sendable {
        case valid
        case refused(CookieRefusal)
    }

    static let size = 16
    /// Uses of one cookie that are taken: a genuine initiator sends the probe that echoes
    /// it at most once per transmission (first send and 3 retransmissions by default).
    /// Counting uses rather than allowing one keeps retransmissions working; counting
    /// at all bounds what one captured probe can be replayed into: at most this many
    /// answers, to the identity that already asked.
    static let maxUses = 4
    /// Recent cookies remembered for the replay bound. Forgetting one (the least recently
    /// used goes first) gives at most `maxUses` more answers for it, still within the
    /// proven identity's own bucket; every cookie costs a challenge from the global
    /// challenge budget, so filling the table is as hard as filling that budget.
    static let remembered = 4096

    private let secret: CookieSecret
    private let slotNanoseconds: UInt64
    private var uses = BoundedLRU<UInt64, Int>(capacity: ReturnCookies.remembered)
    /// The keys of the last two slots asked for: under a flood every cookie checked costs
    /// one SipHash, not three.
    private var keys: [(slot: UInt64, key: CookieSecret)] = []

    init(secret: CookieSecret, slot: TimeAmount) {
        self.secret = secret
        slotNanoseconds = UInt64(max(slot.nanoseconds, 1_000_000))
    }

    private func slot(at now: NIODeadline) -> UInt64 { now.uptimeNanoseconds / slotNanoseconds }

    /// The cookie for a probe from `source` naming `identity` with `initiatorCookie`, at `now`.
    /// (Never nil: 16 bytes always make a `ReturnCookie`.)
    mutating func make(identity: Identity, source: IPAddress, initiatorCookie: Cookie, now: NIODeadline) -> ReturnCookie? {
        let slot = slot(at: now)
        let mac = Self.mac(key: key(for: slot), identity: identity, source: source, initiatorCookie: initiatorCookie)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        for value in [slot, mac] {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }
        return ReturnCookie(bytes)
    }

    /// Checks an echoed cookie and, when it is good, counts a use of it.
    mutating func verify(_ cookie: ReturnCookie, identity: Identity, source: IPAddress, initiatorCookie: Cookie,
                         now: NIODeadline) -> Verdict {
        guard cookie.bytes.count == Self.size else { return .refused(.forged) }
        let slot = cookie.bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let mac = cookie.bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let current = self.slot(at: now)
        guard slot <= current else { return .refused(.forged) }
        guard current - slot <= 1 else { return .refused(.stale) }
        guard mac == Self.mac(key: key(for: slot), identity: identity, source: source, initiatorCookie: initiatorCookie)
        else { return .refused(.forged) }
        let used = uses.use(mac) ?? 0
        guard used < Self.maxUses else { return .refused(.replayed) }
        uses.insert(used + 1, for: mac)
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

    private static func mac(key: CookieSecret, identity: Identity, source: IPAddress, initiatorCookie: Cookie) -> UInt64 {
        var hash = SipHash24(k0: key.k0, k1: key.k1)
        hash.append(identity.address.family.rawValue)
        hash.append(identity.address)
        hash.append(bigEndian: identity.effectivePort)
        hash.append(source.family.rawValue)
        hash.append(source)
        hash.append(bigEndian: initiatorCookie)
        return hash.finalize()
    }
}

/// Why an echoed cookie was refused.
public enum CookieRefusal: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Made more than one slot ago.
    case stale
    /// Not made by this responder for this identity, source and initiator cookie (or of a
    /// size or slot it never makes).
    case forged
    /// Already used `ReturnCookies.maxUses` times.
    case replayed

    public var description: String { rawValue }
}
