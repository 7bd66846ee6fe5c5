import NIOCore
import TEDModel

/// Token buckets per source prefix (/24 IPv4, /64 IPv6) in a bounded LRU table, plus one
/// global bucket. A probe passes only when both have a token; only then are both charged.
struct ProbeRateLimiter: Sendable {
    enum Verdict: Hashable, Sendable {
        case allowed
        case sourceLimited
        case globalLimited
    }

    private let perSource: RateLimit
    private let global: RateLimit
    private var sources: BoundedLRU<IPAddress, TokenBucket>
    private var globalBucket: TokenBucket?

    init(perSource: RateLimit, global: RateLimit, maxSources: Int) {
        self.perSource = perSource
        self.global = global
        self.sources = BoundedLRU(capacity: maxSources)
    }

    var trackedSources: Int { sources.count }

    mutating func admit(from source: IPAddress, now: NIODeadline) -> Verdict {
        let prefix = Self.prefix(of: source)
        var bucket = sources.use(prefix) ?? TokenBucket(limit: perSource, now: now)
        var shared = globalBucket ?? TokenBucket(limit: global, now: now)
        defer {
            sources.insert(bucket, for: prefix)
            globalBucket = shared
        }
        guard bucket.hasToken(limit: perSource, now: now) else { return .sourceLimited }
        guard shared.hasToken(limit: global, now: now) else { return .globalLimited }
        bucket.take()
        shared.take()
        return .allowed
    }

    /// The prefix a source is counted under.
    static func prefix(of address: IPAddress) -> IPAddress {
        let length = address.family == .v4 ? 24 : 64
        return AddressPattern(address: address, prefixLength: length)?.address ?? address
    }
}
