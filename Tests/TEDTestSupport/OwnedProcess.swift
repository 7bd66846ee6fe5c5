import Foundation

#if canImport(Glibc)
import Glibc

/// A long-lived process a test starts (a charon, a daemon) that dies with the test process
/// whatever kills it, SIGKILL included: it is started through `setpriv --pdeathsig KILL`, so
/// the kernel kills it when the thread that spawned it ends. That thread is one of ours,
/// kept until the child exits (a pool thread may retire while the child still runs and
/// would take it along); `ip netns exec`, `unshare` and `sh -c 'exec …'` keep the pid and
/// the death signal, which only a set-user-ID exec clears. The one owner of long-lived
/// children in the test targets; short commands go through `runCommand`.
public final class OwnedProcess: @unchecked Sendable {
    public static let setpriv = "/usr/bin/setpriv"

    /// The child's pid, the same through every exec down to the program itself.
    public let pid: pid_t
    private let exit = ExitState()

    /// Starts `executable` with `arguments`, standard input from /dev/null and both outputs
    /// to `output` (appended; /dev/null when nil).
    public init(_ executable: String, _ arguments: [String], output: String? = nil) throws {
        let argv = [Self.setpriv, "--pdeathsig", "KILL", "--", executable] + arguments
        let spawned = DispatchSemaphore(value: 0)
        let exit = exit
        let thread = Thread {
            let result = Self.spawn(argv, output: output ?? "/dev/null")
            exit.spawned = result
            spawned.signal()
            guard case .success(let pid) = result else { return }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exit.record(status)
        }
        thread.start()
        spawned.wait()
        pid = try exit.spawned!.get()
    }

    /// Whether the child has not exited yet.
    public var isRunning: Bool { exit.status == nil }

    /// The raw wait status once the child has exited.
    public var status: Int32? { exit.status }

    /// The exit code once the child has exited by itself, 128 + the signal when killed.
    public var exitCode: Int32? {
        guard let status = exit.status else { return nil }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f
    }

    public func signal(_ signal: Int32) {
        if isRunning { _ = Glibc.kill(pid, signal) }
    }

    /// Waits up to `timeout` seconds for the child to exit; its wait status, nil if it runs on.
    @discardableResult
    public func wait(timeout: Double = 10) -> Int32? {
        if let status = exit.status { return status }
        guard exit.done.wait(timeout: .now() + timeout) == .success else { return nil }
        exit.done.signal()
        return exit.status
    }

    /// SIGKILL, then waits for it.
    public func kill() {
        signal(SIGKILL)
        wait()
    }

    /// SIGTERM, and SIGKILL if it has not exited after `grace` seconds; its wait status.
    @discardableResult
    public func terminate(grace: Double = 5) -> Int32? {
        signal(SIGTERM)
        if let status = wait(timeout: grace) { return status }
        kill()
        return exit.status
    }

    deinit {
        if isRunning { _ = Glibc.kill(pid, SIGKILL) }
    }

    private static func spawn(_ argv: [String], output: String) -> Result<pid_t, any Error> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard error == 0 else { return .failure(SpawnFailure(description: "\(argv[0]): \(String(cString: strerror(error)))")) }
        return .success(pid)
    }
}

/// What the spawning thread hands back: the pid or why not, then the wait status.
private final class ExitState: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var spawned: Result<pid_t, any Error>?
    private let lock = NSLock()
    private var waitStatus: Int32?

    var status: Int32? { lock.lock(); defer { lock.unlock() }; return waitStatus }

    func record(_ status: Int32) {
        lock.lock()
        waitStatus = status
        lock.unlock()
        done.signal()
    }
}

struct SpawnFailure: Error, CustomStringConvertible {
    let description: String
}
#endif
