import Foundation
import TEDModel

/// A ClassBench acl1 file as the responder's policy (ClassBench destination = local side).
public func classBenchPolicy(_ path: String) throws -> (rules: [ClassBenchRule], policy: Policy) {
    let rules = ClassBenchRule.parse(try readClassBench(path))
    guard !rules.isEmpty else { throw BenchError("no ClassBench rule in \(path)") }
    do {
        return (rules, try Policy(lines: rules.map(\.responderLine)))
    } catch {
        throw BenchError("rule \(error.lineIndex + 1): \(error.error.message)")
    }
}

/// A ClassBench file's text; `.gz` files go through `gzip -dc`.
public func readClassBench(_ path: String) throws -> String {
    guard path.hasSuffix(".gz") else {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw BenchError("cannot read \(path)") }
        return text
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-dc", "--", path]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw BenchError("gzip -dc \(path) failed") }
    return String(decoding: data, as: UTF8.self)
}
