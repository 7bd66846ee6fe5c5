import NIOCore
import TEDModel

/// Token buckets per source prefix and per target prefix (/24 IPv4, /64 IPv6) in bounded
/// LRU tables, plus one global bucket. A probe passes only when all three have a token;
/// only then are all three charged.
///
/// The source is where the datagram came from; the target is the identity the response
/// would be sent to. Limiting only by source lets many sources aim one victim (reflection).
struct ProbeRateLimiter: Sendable {
    enum Verdict: Hashable, Sendable {
        case allowed
        case sourceLimited
        case targetLimited
        case globalLimited
    }

    private let perSource: RateLimit
    private let perTarget: RateLimit
    private let global: RateLimit
    private var sources: BoundedLRU<IPAddress, TokenBucket>
    private var targets: BoundedLRU<IPAddress, TokenBucket>
    private var globalBucket: TokenBucket?

    init(perSource: RateLimit, perTarget: RateLimit, global: RateLimit, maxTracked: Int) {
        self.perSource = perSource
        self.perTarget = perTarget
        self.global = global
        self.sources = BoundedLRU(capacity: maxTracked)
        self.targets = BoundedLRU(capacity: maxTracked)
    }

    var trackedSources: Int { sources.count }
    var trackedTargets: Int { targets.count }

    mutating func admit(from source: IPAddress, to target: IPAddress, now: NIODeadline) -> Verdict {
        let sourcePrefix = Self.prefix(of: source), targetPrefix = Self.prefix(of: target)
        var sourceBucket = sources.use(sourcePrefix) ?? TokenBucket(limit: perSource, now: now)
        var targetBucket = targets.use(targetPrefix) ?? TokenBucket(limit: perTarget, now: now)
        var shared = globalBucket ?? TokenBucket(limit: global, now: now)
        defer {
            sources.insert(sourceBucket, for: sourcePrefix)
            targets.insert(targetBucket, for: targetPrefix)
            globalBucket = shared
        }
        guard sourceBucket.hasToken(limit: perSource, now: now) else { return .sourceLimited }
        guard targetBucket.hasToken(limit: perTarget, now: now) else { return .targetLimited }
        guard shared.hasToken(limit: global, now: now) else { return .globalLimited }
        sourceBucket.take()
        targetBucket.take()
        shared.take()
        return .allowed
    }

    /// The prefix a source or target is counted under.
    static func prefix(of address: IPAddress) -> IPAddress {
        let address = address.unmappedV4
        let length = address.family == .v4 ? 24 : 64
        return AddressPattern(address: address, prefixLength: length)?.address ?? address
    }
}
