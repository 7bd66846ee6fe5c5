import Foundation
import Testing
import TEDBenchSupport
import TEDModel

/// The ClassBench sets kept in the repository (`Benchmarks/classbench`).
enum ClassBenchFixture {
    /// The repository root, found from this file's path (Tests/TEDModelTests/…).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The rules of `Benchmarks/classbench/<name>`; a missing or unreadable file fails the test.
    static func rules(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [ClassBenchRule] {
        let path = repositoryRoot.appendingPathComponent("Benchmarks/classbench/\(name)").path
        let text = try #require(try? String(contentsOfFile: path, encoding: .utf8),
                                "ClassBench set missing: \(path)", sourceLocation: sourceLocation)
        return ClassBenchRule.parse(text)
    }
}
