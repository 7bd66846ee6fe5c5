import TEDModel

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
    /// Entries in one response, the matching one included (clamped to 1...16).
    public var maxEntries: Int

    public init(enabled: Bool = true,
                secret: CookieSecret,
                perSourceRate: RateLimit = RateLimit(perSecond: 10, burst: 20),
                perTargetRate: RateLimit = RateLimit(perSecond: 10, burst: 20),
                globalRate: RateLimit = RateLimit(perSecond: 1000, burst: 2000),
                maxTrackedSources: Int = 4096,
                peerCheck: PeerAddressCheck = PeerAddressCheck(),
                offerAdditionalEntries: Bool = false,
                maxEntries: Int = 16) {
        self.enabled = enabled
        self.secret = secret
        self.perSourceRate = perSourceRate
        self.perTargetRate = perTargetRate
        self.globalRate = globalRate
        self.maxTrackedSources = maxTrackedSources
        self.peerCheck = peerCheck
        self.offerAdditionalEntries = offerAdditionalEntries
        self.maxEntries = maxEntries
    }

    var effectiveMaxEntries: Int { min(max(maxEntries, 1), 16) }
    var effectiveMaxTrackedSources: Int { max(maxTrackedSources, 1) }
}
