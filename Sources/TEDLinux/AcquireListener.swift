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
