import Foundation
import Testing

#if canImport(Glibc)
import Glibc
import TEDTestSupport
#endif

/// Runs test bodies inside a network namespace of their own: a thread joins it
/// (`setns` is per thread), so netlink and nftables work on a private kernel state while
/// the rest of the test process stays where it is. Needs root; without it the tests say
/// why they skip, and with `CI` set they fail instead.
enum NamespaceHarness {
    /// Whether namespace tests can run here; records an issue in CI when they cannot.
    static func available() -> Bool {
        if geteuid() == 0 { return true }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("namespace tests need root, and CI must run them")
        } else {
            print("skipped: namespace tests need root")
        }
        return false
    }

    @discardableResult
    static func run(_ arguments: [String]) -> (status: Int32, output: String) { runWithInput(arguments, input: nil) }

    /// Runs a command with `input` on its standard input.
    static func runWithInput(_ arguments: [String], input: String?) -> (status: Int32, output: String) {
        let run = runCommand("/usr/bin/env", arguments, input: input)
        return (run.status, run.stdout + run.stderr)
    }

    /// Creates a namespace, runs `body` on a thread inside it (with `setup` commands run
    /// there first), and deletes the namespace whatever happens.
    static func inNamespace<T: Sendable>(setup: [[String]], _ body: @escaping @Sendable () throws -> T) throws -> T {
        let name = "\(TestRuns.tag("tedtest"))-\(UInt32.random(in: 0...UInt32.max))"
        guard run(["ip", "netns", "add", name]).status == 0 else { throw HarnessError("ip netns add failed") }
        defer { run(["ip", "netns", "del", name]) }
        for command in setup {
            let result = run(["ip", "netns", "exec", name] + command)
            guard result.status == 0 else { throw HarnessError("\(command.joined(separator: " ")): \(result.output)") }
        }
        let fd = open("/var/run/netns/\(name)", O_RDONLY)
        guard fd >= 0 else { throw HarnessError("open netns: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { throw HarnessError("no setns") }
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let thread = Thread {
            if setns(fd, 0x4000_0000 /* CLONE_NEWNET */) != 0 {
                box.result = .failure(HarnessError("setns: \(String(cString: strerror(errno)))"))
            } else {
                box.result = Result { try body() }
            }
            done.signal()
        }
        thread.start()
        done.wait()
        return try box.result!.get()
    }

    /// Runs a command in the namespace the calling thread is in.
    static func here(_ arguments: [String]) -> String { run(arguments).output }
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
