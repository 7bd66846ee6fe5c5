import NIOCore
import TEDModel
import TEDWire

/// The key of the responder's cookie function; pick it at random when the daemon starts.
public struct CookieSecret: Hashable, Sendable {
    public var k0: UInt64
    public var k1: UInt64

    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A fresh random secret.
    public static func random(using rng: inout some RandomNumberGenerator) -> CookieSecret {
        CookieSecret(k0: rng.next(), k1: rng.next())
    }
}

/// How a responder answers probes and how hard it may be pushed.
///
/// Out-of-range values never trap: the engine clamps them (see each property).
public struct ResponderSettings: Hashable, Sendable {
    /// When false every datagram is dropped with `.disabled`.
    public var enabled: Bool
    /// Key of the keyed hash that makes responder cookies.
    public var secret: CookieSecret
    /// Probes per source prefix (/24 for IPv4, /64 for IPv6).
    public var perSourceRate: RateLimit
    /// Responses towards one identity prefix (/24, /64), whoever sent the probes: bounds
    /// how hard a forged identity can aim ted at a victim.
    public var perTargetRate: RateLimit
    /// Probes from everyone together.
    public var globalRate: RateLimit
    /// Source prefixes (and, separately, target prefixes) with a bucket; the least
    /// recently seen is forgotten (at least 1).
    public var maxTrackedSources: Int
    /// Identities that are never answered (special ranges, this gateway's addresses).
    public var peerCheck: PeerAddressCheck
    /// Whether to list further permit entries after the matching one (to probes that
    /// say they understand several entries).
    public var offerAdditionalEntries: Bool
    /// Entries in one response, the matching one included (clamped to 1...`Response.maximumEntries`).
    public var maxEntries: Int
    /// Whether a probe the rate limits refuse gets a challenge (exchange 242) instead of
    /// silence, so that an initiator that can prove its address is served from its own
    /// bucket (`provenRate`) whatever floods the others. Off unless asked for (the daemon
    /// asks); probes echoing a cookie are checked either way.
    public var challenges: Bool
    /// Key of the challenge cookies (`ReturnCookies`); every time slot derives its own.
    public var challengeSecret: CookieSecret
    /// Challenges sent, to everyone together: bounds the work and the traffic they make
    /// (never more than the probes that provoked them: no challenge is larger than its probe).
    public var challengeRate: RateLimit
    /// Challenges per pair of source prefix and identity prefix (/24, /64): a flood from
    /// one source prefix cannot spend the challenges other initiators need, even a genuine
    /// initiator whose own prefix the flood forges, unless it names that initiator too.
    public var challengePairRate: RateLimit
    /// Probes echoing a good cookie, per identity prefix (/24, /64).
    public var provenRate: RateLimit
    /// Probes echoing a good cookie, all identities together: identities that can read
    /// their own cookies (many prefixes of one attacker) get no more than this.
    public var provenGlobalRate: RateLimit
    /// Length of a cookie's time slot: a cookie is good in its slot and the next.
    public var cookieSlot: TimeAmount

    public init(enabled: Bool = true,
                secret: CookieSecret,
                perSourceRate: RateLimit = Self.defaultPerSourceRate,
                perTargetRate: RateLimit = Self.defaultPerTargetRate,
                globalRate: RateLimit = Self.defaultGlobalRate,
                maxTrackedSources: Int = Self.defaultMaxTrackedSources,
                peerCheck: PeerAddressCheck = PeerAddressCheck(),
                offerAdditionalEntries: Bool = false,
                maxEntries: Int = Response.maximumEntries,
                challenges: Bool = false,
                challengeSecret: CookieSecret? = nil,
                challengeRate: RateLimit = Self.defaultChallengeRate,
                challengePairRate: RateLimit = Self.defaultChallengePairRate,
                provenRate: RateLimit = Self.defaultProvenRate,
                provenGlobalRate: RateLimit = Self.defaultProvenGlobalRate,
                cookieSlot: TimeAmount = .seconds(10)) {
        self.enabled = enabled
        self.secret = secret
        self.perSourceRate = perSourceRate
        self.perTargetRate = perTargetRate
        self.globalRate = globalRate
        self.maxTrackedSources = maxTrackedSources
        self.peerCheck = peerCheck
        self.offerAdditionalEntries = offerAdditionalEntries
        self.maxEntries = maxEntries
        self.challenges = challenges
        // Without a secret of its own, one derived from the response secret (the daemon
        // draws both at random; tests inject them).
        self.challengeSecret = challengeSecret ?? CookieSecret(k0: ~secret.k1, k1: secret.k0 ^ 0x7265_7475_726e_636b)
        self.challengeRate = challengeRate
        self.challengePairRate = challengePairRate
        self.provenRate = provenRate
        self.provenGlobalRate = provenGlobalRate
        self.cookieSlot = cookieSlot
    }

    // Defaults and valid ranges: the configuration's `responder` section defaults to these
    // and refuses values outside them.
    public static let defaultPerSourceRate = RateLimit(perSecond: 100, burst: 200)
    public static let defaultPerTargetRate = RateLimit(perSecond: 100, burst: 200)
    public static let defaultGlobalRate = RateLimit(perSecond: 1_000, burst: 2_000)
    /// Twice what one core receives (about 100,000 probes/s, docs/PERFORMANCE.md): what each
    /// identity and each pair of prefixes get is bounded by their own buckets, so the global
    /// budget only caps the work, and no flood the host can receive spends it before a
    /// genuine initiator's turn.
    public static let defaultChallengeRate = RateLimit(perSecond: 200_000, burst: 200_000)
    public static let defaultChallengePairRate = RateLimit(perSecond: 10, burst: 20)
    public static let defaultProvenRate = RateLimit(perSecond: 50, burst: 100)
    public static let defaultProvenGlobalRate = RateLimit(perSecond: 1_000, burst: 2_000)
    public static let defaultMaxTrackedSources = 65_536
    public static let validMaxTrackedSources = 1...10_000_000

    var effectiveMaxEntries: Int { maxEntries.clamped(to: 1...Response.maximumEntries) }
    var effectiveMaxTrackedSources: Int { max(maxTrackedSources, 1) }
}
