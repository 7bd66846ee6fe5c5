import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a command printed and how it ended.
public struct CommandRun: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `executable` with `arguments` (and `input` on its standard input), reading both
/// outputs while it runs so that neither pipe can fill and stall it; terminated after
/// `timeout` seconds. The one process runner of the test targets.
public func runCommand(_ executable: String, _ arguments: [String], input: String? = nil, timeout: Double = 60) -> CommandRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe(), stdin = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin
    do { try process.run() } catch { return CommandRun(status: 127, stdout: "", stderr: "\(error)") }
    let outputs = PipeReaders(out, err)
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let (stdout, stderr) = outputs.wait()
    return CommandRun(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}

/// Reads two pipes to their end on threads of their own.
private final class PipeReaders: @unchecked Sendable {
    private let group = DispatchGroup()
    private var texts = ["", ""]

    init(_ pipes: Pipe...) {
        for (index, pipe) in pipes.enumerated() {
            let handle = pipe.fileHandleForReading
            DispatchQueue.global().async(group: group) { [self] in
                texts[index] = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            }
        }
    }

    func wait() -> (String, String) {
        group.wait()
        return (texts[0], texts[1])
    }
}
