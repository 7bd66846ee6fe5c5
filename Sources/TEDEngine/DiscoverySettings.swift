import NIOCore
import TEDModel
import TEDWire

/// How an initiator discovers tunnel endpoints: retransmissions, caches and whom it trusts.
///
/// Out-of-range values never trap: the engine clamps them (see each property).
public struct DiscoverySettings: Hashable, Sendable {
    /// Retransmissions after the first probe; a discovery sends at most `retries + 1`
    /// probes (clamped to 0...10).
    public var retries: Int
    /// Wait after each send before the next one (or, after the last, before giving up):
    /// send k (0-based) waits `retransmitSchedule[min(k, count - 1)]`. Each wait is clamped
    /// to 10 ms...1 h; an empty schedule means one second.
    public var retransmitSchedule: [TimeAmount]
    /// Each wait is drawn uniformly from `wait * (1 ± jitter)` (clamped to 0...0.5).
    public var jitter: Double
    /// How long a discovery answers later packets that its intersection contains (0...1 day).
    public var cacheTTL: TimeAmount
    /// How long a failed discovery suppresses new probes for the same service (0...1 day).
    public var negativeTTL: TimeAmount
    /// Discoveries in flight at once (1...1e6); past it a packet fails with `.resourceLimit`.
    public var maxPending: Int
    /// Entries in each of the success and failure caches (0...1e6; 0 disables caching).
    public var maxCache: Int
    /// UDP destination port of probes.
    public var probePort: UInt16
    /// Responder identities that may answer and what each may claim; empty means anyone, anything.
    public var peers: [PeerAuthorization]
    /// Whether probes carry the optional proxy address payload (the local half of the rule).
    public var sendProxyAddress: Bool
    /// Response entries wanted (1...16): above 1 the probe is padded (spec 4.5) so that the
    /// responder may send that many within its amplification bound.
    public var wantedEntries: Int
    /// Response identities that are never accepted (special ranges, this gateway's addresses).
    public var peerCheck: PeerAddressCheck

    // Defaults and valid ranges: the configuration's `discovery` section defaults to these
    // and refuses values outside them.
    public static let defaultRetries = 3
    public static let validRetries = 0...10
    /// The wait after the first probe; each retry of the default schedule doubles it
    /// (0.5, 1, 2, 4 s), as the configuration's `timeout` does.
    public static let defaultFirstWait = TimeAmount.milliseconds(500)
    public static let validWait = TimeAmount.milliseconds(10)...TimeAmount.hours(1)
    public static let defaultCacheTTL = TimeAmount.seconds(300)
    public static let defaultNegativeTTL = TimeAmount.seconds(30)
    public static let validTTL = TimeAmount.zero...TimeAmount.hours(24)
    public static let defaultMaxPending = 1_024
    public static let validMaxPending = 1...1_000_000
    public static let defaultMaxCache = 4_096
    public static let validMaxCache = 0...1_000_000
    public static let defaultWantedEntries = 1
    public static let validWantedEntries = 1...Response.maximumEntries

    public init(retries: Int = Self.defaultRetries,
                retransmitSchedule: [TimeAmount] = Self.doubling(from: Self.defaultFirstWait, retries: Self.defaultRetries),
                jitter: Double = 0.1,
                cacheTTL: TimeAmount = Self.defaultCacheTTL,
                negativeTTL: TimeAmount = Self.defaultNegativeTTL,
                maxPending: Int = Self.defaultMaxPending,
                maxCache: Int = Self.defaultMaxCache,
                probePort: UInt16 = ISAKMP.port,
                peers: [PeerAuthorization] = [],
                sendProxyAddress: Bool = false,
                wantedEntries: Int = Self.defaultWantedEntries,
                peerCheck: PeerAddressCheck = PeerAddressCheck()) {
        self.retries = retries
        self.retransmitSchedule = retransmitSchedule
        self.jitter = jitter
        self.cacheTTL = cacheTTL
        self.negativeTTL = negativeTTL
        self.maxPending = maxPending
        self.maxCache = maxCache
        self.probePort = probePort
        self.peers = peers
        self.sendProxyAddress = sendProxyAddress
        self.wantedEntries = wantedEntries
        self.peerCheck = peerCheck
    }

    /// The authorization of a responder identity: the most specific `peers` entry holding
    /// it (one element), none when no peers are listed (anyone, anything), nil when it may
    /// not answer at all.
    public func authorizations(of address: IPAddress) -> [PeerAuthorization]? {
        if peers.isEmpty { return [] }
        return peers.deciding(for: address).map { [$0] }
    }

    /// Whether a responder identity may claim every one of `entries` (their responder sides).
    public func allows(peer address: IPAddress, claiming entries: [Proxy]) -> Bool {
        guard let rules = authorizations(of: address) else { return false }
        if rules.isEmpty { return true }
        return entries.allSatisfy { entry in rules.contains { $0.mayProtect(entry.responderSide.pattern) } }
    }

    /// The schedule of a first wait that doubles with each retry (the configuration's
    /// `timeout` and `retries`): `first`, 2 `first`, 4 `first`, ...
    public static func doubling(from first: TimeAmount, retries: Int) -> [TimeAmount] {
        (0...min(max(retries, 0), 10)).map { .nanoseconds(first.nanoseconds << Int64($0)) }
    }

    /// The longest a discovery can take before it fails: every send's wait at the top of
    /// its jitter. Held first packets wait this long by default, so none is dropped while
    /// its discovery may still succeed.
    public var longestDiscovery: TimeAmount {
        .nanoseconds((0..<effectiveSends).reduce(Int64(0)) { total, index in
            let base = baseWait(afterSend: index).nanoseconds
            return total + base + Int64((Double(base) * effectiveJitter).rounded(.down))
        })
    }

    /// Total sends of one discovery.
    var effectiveSends: Int { retries.clamped(to: Self.validRetries) + 1 }
    var effectiveJitter: Double { jitter.isFinite ? min(max(jitter, 0), 0.5) : 0 }
    var effectiveMaxPending: Int { maxPending.clamped(to: Self.validMaxPending) }
    var effectiveMaxCache: Int { maxCache.clamped(to: Self.validMaxCache) }
    var effectiveCacheTTL: TimeAmount { cacheTTL.clamped(to: Self.validTTL) }
    var effectiveNegativeTTL: TimeAmount { negativeTTL.clamped(to: Self.validTTL) }

    /// The unjittered wait after send `index` (0-based).
    func baseWait(afterSend index: Int) -> TimeAmount {
        guard let last = retransmitSchedule.indices.last else { return .seconds(1) }
        return retransmitSchedule[min(max(index, 0), last)].clamped(to: Self.validWait)
    }

    /// The jittered waits after each send of one discovery.
    func drawWaits(using rng: inout some RandomNumberGenerator) -> [TimeAmount] {
        (0..<effectiveSends).map { index in
            let base = baseWait(afterSend: index).nanoseconds
            let span = Int64((Double(base) * effectiveJitter).rounded(.down))
            return .nanoseconds(base + Int64.random(in: -span...span, using: &rng))
        }
    }
}
