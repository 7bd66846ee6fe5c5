import NIOCore
import TEDModel

/// Every budget of the responder: what it may send, and towards whom.
///
/// Prefixes are /24 for IPv4, /64 for IPv6; every per-prefix table is a bounded LRU.
/// - Towards an unproven identity (no good cookie), answers and challenges alike take a
///   token of the identity prefix's target bucket: that bucket alone bounds what forged
///   probes can aim at one victim, whatever the mix. An empty one means silence.
/// - An answer also takes a token per source prefix and one of the global bucket.
/// - A challenge instead takes a token of the challenge bucket of its source prefix and
///   identity prefix together, and one of the global challenge budget: a flood from one
///   source prefix, even one forged inside a genuine initiator's own, spends only the
///   buckets of the identities it names, never the genuine initiator's; only the global
///   budget is shared (docs/RELIABILITY.md states what that leaves).
/// - A proven identity (good cookie) is answered from its prefix's proven bucket and a
///   global proven cap, which forged probes never reach (they cannot read the cookie).
/// So at most `perTarget` + `proven` (bursts plus rates over time) reach one identity prefix.
struct ProbeRateLimiter: Sendable {
    /// What the responder may do with a probe whose identity is not proven.
    enum Verdict: Hashable, Sendable {
        case answer
        /// A challenge instead of the answer, for the reason the answer was refused.
        case challenge(DropReason)
        case refuse(DropReason)
    }

    private let limits: ResponderSettings
    private var sources: BoundedLRU<IPAddress, TokenBucket>
    private var targets: BoundedLRU<IPAddress, TokenBucket>
    private var globalBucket: TokenBucket?
    private var challengePairs: BoundedLRU<PrefixPair, TokenBucket>
    private var challengeBucket: TokenBucket?
    private var proven: BoundedLRU<IPAddress, TokenBucket>
    private var provenBucket: TokenBucket?

    init(settings: ResponderSettings) {
        limits = settings
        let capacity = settings.effectiveMaxTrackedSources
        sources = BoundedLRU(capacity: capacity)
        targets = BoundedLRU(capacity: capacity)
        challengePairs = BoundedLRU(capacity: capacity)
        proven = BoundedLRU(capacity: capacity)
    }

    var trackedSources: Int { sources.count }
    var trackedTargets: Int { targets.count }

    /// A probe from `source` naming the unproven identity `target`. `canChallenge`: the
    /// responder would send a challenge (challenges on, and one fits within the probe).
    ///
    /// With challenges possible, a target bucket below half its burst is under attack or
    /// close to it: the rest of its tokens go to challenges, so that the identity's own
    /// initiator learns a cookie and is served from its proven bucket from then on.
    mutating func admit(from source: IPAddress, to target: IPAddress, canChallenge: Bool, now: NIODeadline) -> Verdict {
        let targetPrefix = Self.prefix(of: target)
        var targetBucket = targets.use(targetPrefix) ?? TokenBucket(limit: limits.perTargetRate, now: now)
        defer { targets.insert(targetBucket, for: targetPrefix) }
        guard targetBucket.hasToken(limit: limits.perTargetRate, now: now) else { return .refuse(.rateLimitedTarget) }

        let sourcePrefix = Self.prefix(of: source)
        var sourceBucket = sources.use(sourcePrefix) ?? TokenBucket(limit: limits.perSourceRate, now: now)
        var shared = globalBucket ?? TokenBucket(limit: limits.globalRate, now: now)
        defer {
            sources.insert(sourceBucket, for: sourcePrefix)
            globalBucket = shared
        }
        let refusal: DropReason? = !sourceBucket.hasToken(limit: limits.perSourceRate, now: now) ? .rateLimitedSource
            : !shared.hasToken(limit: limits.globalRate, now: now) ? .rateLimitedGlobal : nil
        let pressed = targetBucket.isBelowHalf(limit: limits.perTargetRate)
        if let reason = refusal ?? (canChallenge && pressed ? .rateLimitedTarget : nil) {
            let pair = PrefixPair(source: sourcePrefix, target: targetPrefix)
            if canChallenge, Self.take(pair, in: &challengePairs, limit: limits.challengePairRate,
                                       global: &challengeBucket, globalLimit: limits.challengeRate, now: now) {
                targetBucket.take()
                return .challenge(reason)
            }
            // No challenge to give: a pressed target still gets its answer while the rest allow it.
            guard refusal == nil else { return .refuse(reason) }
        }
        sourceBucket.take()
        shared.take()
        targetBucket.take()
        return .answer
    }

    /// Whether a proven identity may be answered now; takes its tokens when it may.
    mutating func admitProven(_ identity: IPAddress, now: NIODeadline) -> Bool {
        Self.take(Self.prefix(of: identity), in: &proven, limit: limits.provenRate,
                  global: &provenBucket, globalLimit: limits.provenGlobalRate, now: now)
    }

    private struct PrefixPair: Hashable {
        var source: IPAddress
        var target: IPAddress
    }

    /// Takes a token of `key`'s bucket in `table` and one of `global` when both have one.
    private static func take<Key: Hashable>(_ key: Key, in table: inout BoundedLRU<Key, TokenBucket>, limit: RateLimit,
                                            global: inout TokenBucket?, globalLimit: RateLimit, now: NIODeadline) -> Bool {
        var bucket = table.use(key) ?? TokenBucket(limit: limit, now: now)
        var shared = global ?? TokenBucket(limit: globalLimit, now: now)
        defer {
            table.insert(bucket, for: key)
            global = shared
        }
        guard bucket.hasToken(limit: limit, now: now), shared.hasToken(limit: globalLimit, now: now) else { return false }
        bucket.take()
        shared.take()
        return true
    }

    /// The prefix a source or target is counted under (addresses arrive unmapped).
    static func prefix(of address: IPAddress) -> IPAddress {
        let length = address.family == .v4 ? 24 : 64
        return AddressPattern(address: address, prefixLength: length)?.address ?? address
    }
}
