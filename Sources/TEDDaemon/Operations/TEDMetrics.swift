import CoreMetrics
import TEDEngine
import TEDWire

/// Every metric ted records as it happens, declared here: discovery's and the hand-off's
/// durations (only a histogram keeps them), and the data plane's packet verdicts below.
/// Every other count is the engines' and the socket's (`DiscoveryCounts`), rendered at
/// scrape time beside these. docs/OPERATOR.md lists them all (`MetricsDocumentationTests`).
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

/// The data plane's counts, recorded as the kernel's packets meet their verdicts: held
/// first packets (`FirstPacketHold`).
struct HoldMetrics: Sendable {
    let held: Counter
    let released: Counter
    let dropped: [HeldPackets.DropReason: Counter]

    init(registry: MetricsRegistry) {
        held = Counter(label: "ted_held_packets_total", factory: registry)
        released = Counter(label: "ted_held_released_total", factory: registry)
        dropped = Dictionary(uniqueKeysWithValues: HeldPackets.DropReason.allCases.map {
            ($0, Counter(label: "ted_held_dropped_total", dimensions: [("reason", $0.rawValue)], factory: registry))
        })
    }
}

/// Intercepted probes sent on towards their host, or not (`ProbePasser`).
struct PassMetrics: Sendable {
    let passed: Counter
    let notPassed: Counter

    init(registry: MetricsRegistry) {
        passed = Counter(label: "ted_probes_passed_total", factory: registry)
        notPassed = Counter(label: "ted_probes_not_passed_total", factory: registry)
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
        case .refusedIdentity(let why): "identity_\(why.rawValue)"
        case .disabled: "disabled"
        }
    }
}

/// What ted put back after another program removed it (`LayerRepair`, `IKEHandoff`): one
/// counter per layer, each repair also one warning line.
struct RepairMetrics: Sendable {
    enum Layer: String, CaseIterable, Sendable {
        /// XFRM traps and tunnel bypasses (`ip xfrm policy flush`).
        case xfrm
        /// The guard, hold and interception tables (`nft flush ruleset`).
        case nftables
        /// ted's connections and keys in charon (`swanctl --load-all`).
        case charon
    }

    let repairs: [Layer: Counter]

    init(registry: MetricsRegistry) {
        repairs = Dictionary(uniqueKeysWithValues: Layer.allCases.map {
            ($0, Counter(label: "ted_repairs_total", dimensions: [("layer", $0.rawValue)], factory: registry))
        })
    }

    func repaired(_ layer: Layer) { repairs[layer]?.increment() }
}

