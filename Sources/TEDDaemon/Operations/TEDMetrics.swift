import CoreMetrics
import NIOConcurrencyHelpers
import TEDEngine
import TEDWire

/// Every metric ted exports, created once with fixed labels.
///
/// Reason-labelled counters are created on first use from closed enums, so the set of
/// label values is bounded.
final class TEDMetrics: Sendable {
    let registry: MetricsRegistry
    let probesSent: Counter
    let probesRetransmitted: Counter
    /// Probes sent again at once with a challenge's cookie.
    let challengesAnswered: Counter
    let responsesAccepted: Counter
    let discoveries: Counter
    let responderReceived: Counter
    let responderReplies: Counter
    /// Challenges sent instead of rate-limited drops (refused cookies are drops: `cookie_*`).
    let responderChallenges: Counter
    let responderCookiesAccepted: Counter
    let cacheEntries: Meter
    let pendingDiscoveries: Meter
    let tunnelsUp: Meter
    /// Datagrams that could not be sent (IPv6 destination on an IPv4-only socket).
    let unsendable: Counter
    /// Where a new tunnel's time goes: the first probe to the accepted response, then the
    /// hand-off to the child SA up (`how`: `initiated` by this gateway, or `carried` by a
    /// child already there or the peer's, `InitiationOrder`).
    let discoverySeconds: Timer
    let setupInitiated: Timer
    let setupCarried: Timer
    private let labelled = NIOLockedValueBox([String: Counter]())

    init(registry: MetricsRegistry) {
        self.registry = registry
        probesSent = Counter(label: "ted_probes_sent_total", factory: registry)
        probesRetransmitted = Counter(label: "ted_probes_retransmitted_total", factory: registry)
        challengesAnswered = Counter(label: "ted_challenges_answered_total", factory: registry)
        responsesAccepted = Counter(label: "ted_responses_accepted_total", factory: registry)
        discoveries = Counter(label: "ted_discoveries_total", factory: registry)
        responderReceived = Counter(label: "ted_responder_received_total", factory: registry)
        responderReplies = Counter(label: "ted_responder_replies_total", factory: registry)
        responderChallenges = Counter(label: "ted_responder_challenges_total", factory: registry)
        responderCookiesAccepted = Counter(label: "ted_responder_cookies_accepted_total", factory: registry)
        cacheEntries = Meter(label: "ted_cache_entries", factory: registry)
        pendingDiscoveries = Meter(label: "ted_pending_discoveries", factory: registry)
        tunnelsUp = Meter(label: "ted_tunnels", factory: registry)
        unsendable = Counter(label: "ted_unsendable_total", factory: registry)
        discoverySeconds = Timer(label: "ted_discovery_seconds", factory: registry)
        setupInitiated = Timer(label: "ted_tunnel_setup_seconds", dimensions: [("how", "initiated")], factory: registry)
        setupCarried = Timer(label: "ted_tunnel_setup_seconds", dimensions: [("how", "carried")], factory: registry)
    }

    private func counter(_ label: String, _ key: String, _ value: String) -> Counter {
        labelled.withLockedValue { counters in
            let id = "\(label)|\(value)"
            if let counter = counters[id] { return counter }
            let counter = Counter(label: label, dimensions: [(key, value)], factory: registry)
            counters[id] = counter
            return counter
        }
    }

    func ignored(_ reason: IgnoreReason) { counter("ted_responses_ignored_total", "reason", reason.rawValue).increment() }
    func failed(_ reason: Failure.Reason) { counter("ted_failures_total", "reason", reason.rawValue).increment() }
    func rejected(_ reason: DecodeError.Reason) { counter("ted_rejects_total", "reason", reason.rawValue).increment() }
    func dropped(_ reason: DropReason) {
        if case .rejected(let decode) = reason { rejected(decode) }
        counter("ted_responder_drops_total", "reason", reason.metricLabel).increment()
    }
    /// A datagram the kernel refused to send (or dropped because the socket was full).
    func sendError(_ errnoName: String) { counter("ted_send_errors_total", "errno", errnoName).increment() }
    /// A read of the TED socket that failed and left it open.
    func receiveError(_ errnoName: String) { counter("ted_receive_errors_total", "errno", errnoName).increment() }
    func handOff(_ outcome: String) { counter("ted_handoffs_total", "outcome", outcome).increment() }
}

extension DropReason {
    /// A short label value for metrics.
    var metricLabel: String {
        switch self {
        case .rejected: "rejected"
        case .notAProbe: "not_a_probe"
        case .noMatch: "no_match"
        case .deny: "deny"
        case .unservable: "unservable"
        case .rateLimitedSource: "rate_limited_source"
        case .rateLimitedTarget: "rate_limited_target"
        case .rateLimitedGlobal: "rate_limited_global"
        case .rateLimitedProven: "rate_limited_proven"
        case .badCookie(let why): "cookie_\(why.rawValue)"
        case .refusedIdentity(let why): "identity_\(why.rawValue)"
        case .disabled: "disabled"
        }
    }
}
