import CoreMetrics
import Prometheus
import Synchronization

/// ted's metrics: a swift-metrics factory backed by swift-prometheus, which renders the
/// Prometheus text exposition format.
///
/// Passed explicitly to each metric (no global bootstrap), so several daemons can live
/// in one process (tests, `ted demo`).
public final class MetricsRegistry: MetricsFactory, Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        factory.makeCounter(label: label, dimensions: dimensions)
    }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        factory.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        factory.makeMeter(label: label, dimensions: dimensions)
    }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        factory.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }
    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        factory.makeTimer(label: label, dimensions: dimensions)
    }
    public func destroyCounter(_ handler: CounterHandler) { factory.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) { factory.destroyFloatingPointCounter(handler) }
    public func destroyMeter(_ handler: MeterHandler) { factory.destroyMeter(handler) }
    public func destroyRecorder(_ handler: RecorderHandler) { factory.destroyRecorder(handler) }
    public func destroyTimer(_ handler: TimerHandler) { factory.destroyTimer(handler) }

    /// Text rendered at scrape time after the registry's own metrics (`DiscoveryCounts`).
    private let sources = Mutex<[@Sendable () -> String]>([])

    /// Adds text rendered at every scrape, after what the registry holds.
    public func addSource(_ render: @escaping @Sendable () -> String) {
        sources.withLock { $0.append(render) }
    }

    /// Prometheus text exposition format.
    public func prometheusText() -> String {
        registry.emitToString() + sources.withLock { $0 }.map { $0() }.joined()
    }

    /// The value of one metric as the exposition shows it (0 when absent), for status and tests.
    public func value(_ label: String, _ dimensions: [(String, String)] = []) -> Double {
        let labels = dimensions.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
        let key = labels.isEmpty ? label : "\(label){\(labels)}"
        for line in prometheusText().split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), line[..<space] == key else { continue }
            return Double(line[line.index(after: space)...]) ?? 0
        }
        return 0
    }
}
