import CoreMetrics
import NIOConcurrencyHelpers
import Synchronization

/// A swift-metrics factory that keeps every value in memory and renders Prometheus text.
///
/// Passed explicitly to each metric (no global bootstrap), so several daemons can live
/// in one process (tests, `ted demo`).
public final class MetricsRegistry: MetricsFactory, Sendable {
    private let box = NIOLockedValueBox([String: Cell]())

    public init() {}

    final class Cell: CounterHandler, FloatingPointCounterHandler, MeterHandler, RecorderHandler, TimerHandler, Sendable {
        let name: String
        let labels: String
        let kind: String
        /// Whole-number increments (the hot path: one atomic add, no lock).
        private let count = Atomic<Int64>(0)
        /// Everything else: gauges and fractional amounts.
        private let value = NIOLockedValueBox(0.0)

        init(name: String, labels: String, kind: String) {
            self.name = name
            self.labels = labels
            self.kind = kind
        }

        var current: Double { Double(count.load(ordering: .relaxed)) + value.withLockedValue { $0 } }
        func increment(by amount: Int64) { count.add(amount, ordering: .relaxed) }
        func increment(by amount: Double) { value.withLockedValue { $0 += amount } }
        func reset() {
            count.store(0, ordering: .relaxed)
            value.withLockedValue { $0 = 0 }
        }
        func set(_ newValue: Double) {
            count.store(0, ordering: .relaxed)
            value.withLockedValue { $0 = newValue }
        }
        func set(_ newValue: Int64) { set(Double(newValue)) }
        func decrement(by amount: Double) { value.withLockedValue { $0 -= amount } }
        func record(_ newValue: Int64) { set(Double(newValue)) }
        func record(_ newValue: Double) { set(newValue) }
        func recordNanoseconds(_ duration: Int64) { set(Double(duration) / 1e9) }
    }

    private func cell(_ label: String, _ dimensions: [(String, String)], kind: String) -> Cell {
        let name = label.map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce(into: "") { $0.append($1) }
        let labels = dimensions.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        let key = name + "{" + labels + "}"
        return box.withLockedValue { cells in
            if let existing = cells[key] { return existing }
            let created = Cell(name: name, labels: labels, kind: kind)
            cells[key] = created
            return created
        }
    }

    private static func escape(_ value: String) -> String {
        value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        cell(label, dimensions, kind: "counter")
    }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        cell(label, dimensions, kind: "counter")
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        cell(label, dimensions, kind: "gauge")
    }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        cell(label, dimensions, kind: "gauge")
    }
    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        cell(label, dimensions, kind: "gauge")
    }
    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}

    /// The value of one metric, for status output and tests.
    public func value(_ label: String, _ dimensions: [(String, String)] = []) -> Double {
        cell(label, dimensions, kind: "counter").current
    }

    /// Prometheus text exposition format 0.0.4.
    public func prometheusText() -> String {
        let cells = box.withLockedValue { Array($0.values) }.sorted { ($0.name, $0.labels) < ($1.name, $1.labels) }
        var out = ""
        var typed: Set<String> = []
        for cell in cells {
            if typed.insert(cell.name).inserted { out += "# TYPE \(cell.name) \(cell.kind)\n" }
            let value = cell.current
            let text = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
            out += cell.labels.isEmpty ? "\(cell.name) \(text)\n" : "\(cell.name){\(cell.labels)} \(text)\n"
        }
        return out
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
