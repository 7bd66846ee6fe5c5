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
        for line in text.split(separator: "\n") where line.hasPrefix("| `ted_") {
            let cell = line.split(separator: "|")[0]
            for match in cell.matches(of: /`(ted_[a-z_]+)/) { names.insert(String(match.1)) }
        }
        return names
    }

    @Test func everyMetricIsDocumentedAndEveryDocumentedOneExists() async throws {
        let configuration = try IKEHandoffTests.configuration()
        let node = try await TEDNode.start(configuration: configuration, bind: Endpoint(address: IPAddress("127.0.0.1")!, port: 0),
                                           logger: quietLogger)
        defer { Task { await node.stop() } }
        _ = HoldMetrics(registry: node.metrics)
        _ = PassMetrics(registry: node.metrics)
        _ = RepairMetrics(registry: node.metrics)
        let exposed = Set(node.metrics.prometheusText().split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# TYPE ") else { return nil }
            return String(line.split(separator: " ")[2])
        })
        let documented = try Self.documented()
        #expect(exposed.subtracting(documented).isEmpty, "exposed, not in docs/OPERATOR.md: \(exposed.subtracting(documented).sorted())")
        #expect(documented.subtracting(exposed).isEmpty, "in docs/OPERATOR.md, not exposed: \(documented.subtracting(exposed).sorted())")
        #expect(exposed.count > 25)
    }
}
