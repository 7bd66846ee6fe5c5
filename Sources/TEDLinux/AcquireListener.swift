import CTEDLinux
import Synchronization
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// Listens for XFRM ACQUIRE messages (a packet hit a trap) and reports each triggering
/// packet. A dedicated thread blocks in recv with a short timeout, so `stop` is prompt
/// and nothing spins.
public final class AcquireListener: Sendable {
    private let fd: Int32
    private let control = ThreadControl()

    /// Starts listening; `onPacket` runs on the listener's thread.
    public init(onPacket: @escaping @Sendable (Packet) -> Void) throws(LinuxError) {
        fd = try check(ted_xfrm_open(1 << 0 /* XFRMNLGRP_ACQUIRE */, 200), "open NETLINK_XFRM acquire group")
        let fd = self.fd, control = self.control
        spawnThread(name: "ted-acquire") {
            var selector = ted_selector()
            while control.isRunning {
                if ted_xfrm_receive_acquire(fd, &selector) == 1, let packet = selector.packet {
                    onPacket(packet)
                }
            }
            control.threadFinished()
        }
    }

    /// Stops the thread (within the receive timeout) and closes the socket.
    public func stop() {
        control.stop(threads: 1)
        close(fd)
    }
}

/// Runs a closure on a new detached POSIX thread named `name` (at most 15 bytes: what
/// `top -H` and `perf` show).
func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) {
    var thread = pthread_t()
    let context = Unmanaged.passRetained(ThreadBody(name: name, body)).toOpaque()
    pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let thread = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
        ted_name_thread(thread.name)
        thread.body()
        return nil
    }, context)
    pthread_detach(thread)
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
