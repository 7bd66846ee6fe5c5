import Foundation

/// Runs a system tool (`nft`, `ip`) with optional standard input; returns its exit status
/// and combined output.
func runCommand(_ arguments: [String], input: String? = nil) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe(), stdin = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = stdin
    do { try process.run() } catch { return (127, "\(arguments[0]): \(error)") }
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A failed system tool: the command and what it printed.
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public let command: String
    public let output: String
    public var description: String { "\(command) failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
}
