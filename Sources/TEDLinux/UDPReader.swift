import CTEDLinux

#if canImport(Glibc)
import Glibc
#endif

/// Reads a UDP socket on a dedicated thread, one `recvmmsg` per wake-up: an idle socket
/// costs nothing, a busy one a system call per batch, and no event loop sits between the
/// kernel and the code that answers.
///
/// A failed read never ends the thread unless the socket itself is unusable (`EBADF`,
/// `ENOTSOCK`, `EFAULT`, `EINVAL`): what one datagram or one peer can cause is reported
/// and reading goes on.
public final class UDPReader: Sendable {
    private let fd: Int32
    private let control = ThreadControl()

    /// Starts reading `fd`, whose receive timeout bounds how long `stop` waits.
    /// `onBatch` runs on the reader's thread after each read that brought datagrams;
    /// `onError` with the errno of each failed read that leaves the socket usable;
    /// `onEnd` once, when the thread ends: nil after `stop`, else the errno that ended it.
    public init(fd: Int32, slots: Int,
                onBatch: @escaping @Sendable (UDPSocket.ReceiveBatch) -> Void,
                onError: @escaping @Sendable (Int32) -> Void,
                onEnd: @escaping @Sendable (Int32?) -> Void) {
        self.fd = fd
        let control = self.control
        spawnThread(name: "ted-socket") {
            let batch = UDPSocket.ReceiveBatch(slots: slots)
            var fatal: Int32?
            while control.isRunning {
                switch batch.receive(on: fd) {
                case .received:
                    // A read woken by `stop` brings no datagram worth answering.
                    if control.isRunning { onBatch(batch) }
                case .idle:
                    continue
                case .failed(let code) where Self.isFatal(code):
                    fatal = code
                case .failed(let code):
                    onError(code)
                    // Out of memory or buffers: give the system a moment rather than spin.
                    if code == ENOMEM || code == ENOBUFS { usleep(1_000) }
                }
                if fatal != nil { break }
            }
            // Reported before the thread counts as finished, so `stop` returns after it.
            onEnd(fatal)
            control.threadFinished()
        }
    }

    static func isFatal(_ code: Int32) -> Bool {
        code == EBADF || code == ENOTSOCK || code == EFAULT || code == EINVAL
    }

    /// Ends the thread and waits for it (at most a second): a read blocked in the kernel is
    /// woken by shutting the socket's receive side. The socket is not closed.
    public func stop() {
        let fd = self.fd
        control.stop(threads: 1) { _ = shutdown(fd, Int32(SHUT_RD)) }
    }
}
