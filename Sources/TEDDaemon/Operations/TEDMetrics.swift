import CoreMetrics
import TEDEngine
import TEDWire

/// The metrics discovery records as they happen: durations, which only a histogram
/// keeps. Every count is the engines' and the socket's (`DiscoveryCounts`), rendered at
/// scrape time beside these.
final class TEDMetrics: Sendable {
    let registry: MetricsRegistry
    /// Where a new tunnel's time goes: the first probe to the accepted response, then the
    /// hand-off to the child SA up (`how`: `initiated` by this gateway, or `carried` by a
    /// child already there or the peer's, `InitiationOrder`).
    let discoverySeconds: Timer
    let setupInitiated: Timer
    let setupCarried: Timer

    init(registry: MetricsRegistry) {
        self.registry = registry
        discoverySeconds = Timer(label: "ted_discovery_seconds", factory: registry)
        setupInitiated = Timer(label: "ted_tunnel_setup_seconds", dimensions: [("how", "initiated")], factory: registry)
        setupCarried = Timer(label: "ted_tunnel_setup_seconds", dimensions: [("how", "carried")], factory: registry)
    }
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
