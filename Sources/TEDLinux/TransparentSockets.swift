import CTEDLinux
import Synchronization
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// Probes that leave with packet P's source address and port (spec section 1), so they
/// follow P's path to the first responder on it.
public enum TransparentProbe {
    /// Sends `bytes` from `source`:`sourcePort` to `destination`:`destinationPort`
    /// (IP_TRANSPARENT, with a per-socket XFRM bypass so ted's traps do not catch it).
    ///
    /// A probe passed on (`exactPort`) keeps its source port or is not sent, leaves with
    /// `ttl` (the TTL it arrived with, less one) and carries `mark`.
    public static func send(_ bytes: [UInt8], from source: IPAddress, port sourcePort: UInt16,
                            to destination: IPAddress, port destinationPort: UInt16,
                            ttl: Int = 0, mark: UInt32 = 0, exactPort: Bool = false) throws(LinuxError) {
        let result = bytes.withUnsafeBytes { data in
            source.bytes.withUnsafeBufferPointer { src in
                destination.bytes.withUnsafeBufferPointer { dst in
                    ted_send_transparent_ex(source.family.rawValue, src.baseAddress, sourcePort, dst.baseAddress,
                                            destinationPort, data.baseAddress, data.count, Int32(ttl), mark,
                                            exactPort ? 1 : 0)
                }
            }
        }
        try check(result, "send probe from \(source):\(sourcePort) to \(destination):\(destinationPort)")
    }
}

/// The socket nftables TPROXY steers intercepted probes to: reports each datagram with its
/// source and the destination it was originally sent to.
public final class InterceptListener: Sendable {
    public struct Datagram: Sendable {
        public let bytes: [UInt8]
        public let source: IPAddress
        public let sourcePort: UInt16
        public let originalDestination: IPAddress?
        public let originalPort: UInt16
        /// The TTL (IPv4) or hop limit (IPv6) it arrived with; 0 when unknown.
        public let ttl: Int
    }

    private let sockets: [Int32]
    private let control = ThreadControl()
    /// Per socket, the datagrams the kernel dropped before they were read (SO_RXQ_OVFL).
    private let dropped: Overflows
    private final class Overflows: Sendable {
        let counts: Mutex<[UInt32]>
        init(sockets: Int) { counts = Mutex(Array(repeating: 0, count: sockets)) }
    }

    /// Intercepted datagrams the kernel dropped for a full receive buffer, all sockets.
    public var overflows: Int { dropped.counts.withLock { $0.reduce(0) { $0 + Int($1) } } }

    /// Listens on `port` for the given families; `onDatagram` runs on the listener threads.
    public init(port: UInt16, families: [IPAddress.Family], onDatagram: @escaping @Sendable (Datagram) -> Void) throws(LinuxError) {
        var sockets: [Int32] = []
        for family in families {
            let fd = ted_transparent_listener(family.rawValue, port, 200)
            guard fd >= 0 else {
                sockets.forEach { close($0) }
                throw LinuxError("transparent listener on port \(port) (\(family))", code: -fd)
            }
            sockets.append(fd)
        }
        self.sockets = sockets
        dropped = Overflows(sockets: sockets.count)
        for (index, (fd, family)) in zip(sockets, families).enumerated() {
            let control = self.control
            let dropped = self.dropped
            spawnThread(name: "ted-intercept") {
                var buffer = [UInt8](repeating: 0, count: 4352)
                var source = [UInt8](repeating: 0, count: 16), destination = [UInt8](repeating: 0, count: 16)
                var sourcePort: UInt16 = 0, destinationPort: UInt16 = 0
                var ttl: Int32 = 0
                var overflows: UInt32 = 0, reported: UInt32 = 0
                while control.isRunning {
                    let count = ted_receive_with_original_destination(fd, &buffer, buffer.count, &source, &sourcePort,
                                                                      &destination, &destinationPort, &ttl, &overflows)
                    if overflows != reported {
                        reported = overflows
                        dropped.counts.withLock { $0[index] = overflows }
                    }
                    guard count > 0, let from = IPAddress(bytes: source.prefix(family.byteCount)) else { continue }
                    onDatagram(Datagram(bytes: Array(buffer.prefix(Int(count))), source: from, sourcePort: sourcePort,
                                        originalDestination: destinationPort == 0 ? nil : IPAddress(bytes: destination.prefix(family.byteCount)),
                                        originalPort: destinationPort, ttl: Int(ttl)))
                }
                control.threadFinished()
            }
        }
    }

    public func stop() {
        control.stop(threads: sockets.count)
        sockets.forEach { close($0) }
    }
}

/// Whether the kernel can hold ESP states (else strongSwan must use kernel-libipsec).
public func kernelHasESP() -> Bool { ted_kernel_has_esp() == 1 }
