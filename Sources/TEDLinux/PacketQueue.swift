import CTEDLinux
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// ted's netfilter queue: the kernel holds each queued packet until ted gives it a
/// verdict (accept or drop). Once started, a dedicated thread reads the queue with a short
/// timeout and reports packets in batches, then `onTick` (for expiry), so `stop` is
/// prompt. Closing the socket makes the kernel drop every packet still held.
public final class PacketQueue: Sendable {
    /// One queued packet: its kernel id, mark, length and first header bytes.
    public struct Queued: Sendable {
        public let id: UInt32
        public let mark: UInt32
        public let length: Int
        public let header: [UInt8]
    }

    public let number: UInt16
    private let fd: Int32
    private let control = ThreadControl()
    private let started = Atomic<Bool>(false)

    /// Binds queue `number`; the kernel holds at most `maxLength` packets, and drops the
    /// rest. Nothing is read before `start`.
    public init(number: UInt16, maxLength: Int, tick: Int32 = 50) throws(LinuxError) {
        self.number = number
        fd = try check(ted_nfq_open(number, UInt32(clamping: maxLength), tick), "bind netfilter queue \(number)")
    }

    /// Starts reading; the closures run on the reader's thread (`onTick` after each read
    /// or timeout, at most `tick` ms apart).
    public func start(onPackets: @escaping @Sendable ([Queued]) -> Void, onTick: @escaping @Sendable () -> Void) {
        let fd = self.fd, control = self.control
        started.store(true, ordering: .releasing)
        spawnThread(name: "ted-hold") {
            var batch = [ted_queued_packet](repeating: ted_queued_packet(), count: 64)
            while control.isRunning {
                let count = batch.withUnsafeMutableBufferPointer { ted_nfq_receive(fd, $0.baseAddress, Int32($0.count)) }
                if count > 0 {
                    onPackets(batch.prefix(Int(count)).map { packet in
                        let header = withUnsafeBytes(of: packet.header) { Array($0.prefix(Int(packet.captured))) }
                        return Queued(id: packet.id, mark: packet.mark, length: Int(packet.length), header: header)
                    })
                }
                // A failed read (ENOBUFS) strands nothing: the kernel queues only what it
                // could deliver, and drops the rest.
                onTick()
            }
            control.threadFinished()
        }
    }

    /// Lets a held packet go on, with `mark`.
    public func accept(_ id: UInt32, mark: UInt32) {
        _ = ted_nfq_verdict(fd, number, id, 1, mark)
    }

    /// Drops a held packet.
    public func drop(_ id: UInt32) {
        _ = ted_nfq_verdict(fd, number, id, 0, 0)
    }

    /// Stops the thread (when started) and closes the socket: the kernel drops what is still held.
    public func stop() {
        control.stop(threads: started.load(ordering: .acquiring) ? 1 : 0)
        close(fd)
    }
}
