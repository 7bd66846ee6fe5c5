import Foundation
import Testing
import TEDConfig
import TEDModel
@testable import TEDDaemon

/// docs/OPERATOR.md's metrics table and `/metrics` name the same metrics: a node of both
/// roles, with the data plane's metrics registered as the data plane registers them,
/// lists every family from its first scrape.
@Suite struct MetricsDocumentationTests {
    static let operatorGuide = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/OPERATOR.md").path

    /// The metric names in the first cell of the guide's table rows.
    static func documented() throws -> Set<String> {
        let text = try String(contentsOfFile: operatorGuide, encoding: .utf8)
        var names: Set<String> = []
        for line in text.split(separator: "\n") where line.hasPrefix("| `ted_") || line.hasPrefix("| `process_") {
            let cell = line.split(separator: "|")[0]
            for match in cell.matches(of: /`((?:ted|process)_[a-z_]+)/) { names.insert(String(match.1)) }
        }
        return names
    }

    /// The families a daemon of both roles with the data plane and the hand-off exposes,
    /// each registered as the daemon registers it.
    static func exposed() async throws -> Set<String> {
        Set(try await scrapeTypes().keys)
    }

    /// Each family of that scrape with its type (`counter`, `gauge`, `histogram`).
    static func scrapeTypes() async throws -> [String: String] {
        let configuration = try IKEHandoffTests.configuration()
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: IPAddress("127.0.0.1")!, port: 0),
                                           logger: quietLogger)
        defer { Task { await node.stop() } }
        _ = HoldMetrics(registry: node.metrics)
        _ = PassMetrics(registry: node.metrics)
        _ = RepairMetrics(registry: node.metrics)
        _ = IKEMetrics(registry: node.metrics)
        node.metrics.addSource(HealthMetrics.source(plugins: []))
        var types: [String: String] = [:]
        for line in node.metrics.prometheusText().split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let words = line.split(separator: " ")
            if words.count == 4 { types[String(words[2])] = String(words[3]) }
        }
        return types
    }

    @Test func everyMetricIsDocumentedAndEveryDocumentedOneExists() async throws {
        let exposed = try await Self.exposed()
        let documented = try Self.documented()
        #expect(exposed.subtracting(documented).isEmpty, "exposed, not in docs/OPERATOR.md: \(exposed.subtracting(documented).sorted())")
        #expect(documented.subtracting(exposed).isEmpty, "in docs/OPERATOR.md, not exposed: \(documented.subtracting(exposed).sorted())")
        #expect(exposed.count > 25)
    }
}
