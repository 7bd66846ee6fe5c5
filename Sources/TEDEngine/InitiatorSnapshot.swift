import NIOCore
import TEDModel
import TEDWire

/// Running totals of an initiator, for metrics and `ted status`.
public struct InitiatorCounters: Hashable, Sendable {
    /// First transmissions of probes.
    public var probesSent = 0
    public var retransmits = 0
    /// Responses that ended a discovery (as a discovery or as a failure).
    public var responsesAccepted = 0
    public var responsesIgnored: [IgnoreReason: Int] = [:]
    public var rejects: [RejectReason: Int] = [:]
    public var discoveries = 0
    public var failures: [Failure.Reason: Int] = [:]
    /// Packets answered from the discovery cache.
    public var cacheHits = 0
    /// Packets answered from the failure cache.
    public var negativeCacheHits = 0
    /// Packets that joined a discovery in flight instead of probing.
    public var joins = 0
    /// Cache entries pushed out by the size bound (both caches).
    public var evictions = 0
    /// Cache entries that reached their expiry (both caches).
    public var expirations = 0
    /// Cache entries dropped by `forget` (both caches).
    public var forgotten = 0
    /// Challenges answered by sending the probe again with their cookie.
    public var challengesAnswered = 0

    public init() {}
}

/// What an initiator holds right now.
public struct InitiatorSnapshot: Hashable, Sendable {
    /// A discovery in flight.
    public struct Pending: Hashable, Sendable {
        public let packet: Packet
        public let cookie: Cookie
        public let localRuleIndex: Int
        public let destination: IPAddress
        public let destinationPort: UInt16
        /// Probes sent so far.
        public let attempts: Int
        /// When the next retransmission, or the timeout, falls due.
        public let nextEvent: NIODeadline
        /// Packets that joined it.
        public let joined: Int
    }

    /// A cached discovery.
    public struct CacheEntry: Hashable, Sendable {
        public let peer: Identity
        public let intersection: Proxy
        public let localRuleIndex: Int
        public let expires: NIODeadline
    }

    /// A cached failure.
    public struct FailureEntry: Hashable, Sendable {
        public let packet: Packet
        public let destination: IPAddress
        public let reason: Failure.Reason
        public let expires: NIODeadline
    }

    /// A peer whose claim IKE did not prove (`Initiator.refute`).
    public struct Refutation: Hashable, Sendable {
        public let peer: IPAddress
        public let intersection: Proxy
        public let expires: NIODeadline
    }

    /// Ordered by next event, then cookie.
    public let pending: [Pending]
    /// Most recently used first.
    public let cache: [CacheEntry]
    /// Most recently used first.
    public let failures: [FailureEntry]
    /// Newest first.
    public var refuted: [Refutation] = []
    public let counters: InitiatorCounters
}
