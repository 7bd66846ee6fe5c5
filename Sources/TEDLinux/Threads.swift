import CTEDLinux
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a closure on a new detached POSIX thread named `name` (at most 15 bytes: what
/// `top -H` and `perf` show).
public func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) {
    pthread_detach(startThread(name: name, body))
}

/// A named POSIX thread that can be waited for (`join`), for work that must finish before
/// its owner goes (a capture file's last records).
public final class JoinableThread: Sendable {
    private let handle: pthread_t

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        handle = startThread(name: name, body)
    }

    public func join() { pthread_join(handle, nil) }
}

private func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    var thread = pthread_t()
    pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let thread = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
        ted_name_thread(thread.name)
        thread.body()
        return nil
    }, Unmanaged.passRetained(ThreadBody(name: name, body)).toOpaque())
    return thread
}

private final class ThreadBody: Sendable {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A stop flag shared with listener threads, and a count of threads that have ended.
final class ThreadControl: Sendable {
    private let running = Atomic<Bool>(true)
    private let finished = Atomic<Int>(0)

    var isRunning: Bool { running.load(ordering: .acquiring) }
    func threadFinished() { finished.add(1, ordering: .releasing) }

    /// Asks the threads to end, then runs `wake` (which unblocks their reads), and waits up
    /// to a second for `threads` of them. The order matters: a thread woken before it can
    /// see the flag would take the wake-up for data and read on.
    func stop(threads: Int, wake: () -> Void = {}) {
        running.store(false, ordering: .releasing)
        wake()
        for _ in 0..<100 where finished.load(ordering: .acquiring) < threads { usleep(10_000) }
    }
}
