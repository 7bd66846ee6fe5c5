import Foundation
import Testing
@testable import TEDDaemon

/// contrib/prometheus/ted-alerts.yml and contrib/grafana/ted.json name only metrics ted
/// exports: each name is a family of a scrape (`MetricsDocumentationTests.scrapeTypes`),
/// or a histogram's `_bucket`, `_sum` or `_count`. A renamed or removed metric fails here,
/// not silently in an operator's Prometheus.
@Suite struct MonitoringContribTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let files = ["contrib/prometheus/ted-alerts.yml", "contrib/prometheus/ted-alerts.test.yml", "contrib/grafana/ted.json"]

    /// Every `ted_...` and `process_...` word of `text`.
    static func metricNames(_ text: String) -> Set<String> {
        Set(text.matches(of: /\b((?:ted|process)_[a-z0-9_]+)/).map { String($0.1) })
    }

    /// The names in `names` that are no metric of `types`.
    static func unknown(_ names: Set<String>, _ types: [String: String]) -> [String] {
        names.filter { name in
            if types[name] != nil { return false }
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                if types[String(name.dropLast(suffix.count))] == "histogram" { return false }
            }
            return true
        }.sorted()
    }

    @Test(arguments: files)
    func namesOnlyMetricsTedExports(_ file: String) async throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
        let names = Self.metricNames(text)
        #expect(names.count >= 5, "\(file) names \(names.sorted())")
        let types = try await MetricsDocumentationTests.scrapeTypes()
        #expect(Self.unknown(names, types).isEmpty, "\(file) names metrics ted does not export: \(Self.unknown(names, types))")
    }

    /// The check itself: a misspelt name, a counter's `_bucket`, a histogram's bucket.
    @Test func theCheckCatchesWhatIsNotExported() async throws {
        let types = try await MetricsDocumentationTests.scrapeTypes()
        let names = Self.metricNames(#"rate(ted_repair_total[5m]) ted_probes_sent_total_bucket "#
            + #"histogram_quantile(0.9, rate(ted_discovery_seconds_bucket[5m])) up{job="ted"} process_start_time_seconds"#)
        #expect(names == ["ted_repair_total", "ted_probes_sent_total_bucket", "ted_discovery_seconds_bucket", "process_start_time_seconds"])
        #expect(Self.unknown(names, types) == ["ted_probes_sent_total_bucket", "ted_repair_total"])
    }

    /// Every alert the issue asks for is there, and has a unit test in ted-alerts.test.yml.
    @Test func everyAlertIsTested() throws {
        let rules = try String(contentsOf: Self.root.appendingPathComponent(Self.files[0]), encoding: .utf8)
        let tests = try String(contentsOf: Self.root.appendingPathComponent(Self.files[1]), encoding: .utf8)
        let alerts = rules.matches(of: /- alert: (\w+)/).map { String($0.1) }
        #expect(alerts == ["TedDown", "TedCharonLost", "TedDiscoveriesFailing", "TedHoldOverflowing", "TedChallengesSurging", "TedRepairingAgain"])
        for alert in alerts {
            #expect(tests.components(separatedBy: "alertname: \(alert)\n").count - 1 >= 2, "\(alert): a firing and a quiet evaluation")
        }
    }
}
