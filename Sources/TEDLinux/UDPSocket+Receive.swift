import CTEDLinux
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

extension UDPSocket {
    /// What one `recvmmsg` read, in storage kept from one read to the next: receiving
    /// allocates nothing. Owned by the one thread that reads.
    public final class ReceiveBatch {
        /// Bytes kept per datagram: more than a TED message may hold (4,096), so a longer
        /// datagram, cut to this size, still reads as too long and is rejected as such.
        public static let slotSize = 4352

        /// The result of one read.
        public enum Outcome: Equatable, Sendable {
            /// `count` datagrams (at least one) are in the batch.
            case received(Int)
            /// Nothing arrived within the socket's receive timeout. (A shutdown brings empty
            /// datagrams without a source instead: see `datagram(_:)`.)
            case idle
            /// The read failed with this errno; the batch is empty.
            case failed(Int32)
        }

        private let storage: UnsafeMutableRawBufferPointer
        private var records: [ted_datagram]
        /// Datagrams of the last read.
        public private(set) var count = 0
        /// Datagrams the kernel dropped on this socket so far because its receive buffer was
        /// full (as the last read that said so reported; sockets of `UDPSocket.bind`).
        public private(set) var overflows: UInt32 = 0

        /// Room for `slots` datagrams per read (1 to `UDPSocket.batch`).
        public init(slots: Int) {
            let slots = min(max(slots, 1), UDPSocket.batch)
            storage = .allocate(byteCount: slots * Self.slotSize, alignment: 16)
            records = Array(repeating: ted_datagram(), count: slots)
        }

        deinit { storage.deallocate() }

        /// One `recvmmsg` on `fd`: blocks until a datagram arrives (at most the socket's
        /// receive timeout), then takes the ones already queued behind it.
        public func receive(on fd: Int32) -> Outcome {
            count = 0
            guard let base = storage.baseAddress else { return .failed(ENOMEM) }
            let result = records.withUnsafeMutableBufferPointer { records in
                ted_receive_datagrams(fd, base.assumingMemoryBound(to: UInt8.self), Self.slotSize,
                                      records.baseAddress, Int32(records.count), &overflows)
            }
            if result > 0 {
                count = Int(result)
                return .received(count)
            }
            return result == 0 || result == -EAGAIN || result == -EWOULDBLOCK ? .idle : .failed(-result)
        }

        /// Datagram `index` of the last read: its bytes (valid until the next read) and its
        /// source, nil when the kernel named none (a wake-up by `shutdown`).
        public func datagram(_ index: Int) -> (bytes: UnsafeRawBufferPointer, source: IPAddress?, port: UInt16) {
            let record = records[index]
            let bytes = UnsafeRawBufferPointer(start: record.data, count: record.data == nil ? 0 : record.length)
            let source: IPAddress? = withUnsafeBytes(of: record.address) { raw in
                switch record.family {
                case 4: IPAddress(v4: raw.loadUnaligned(as: UInt32.self).bigEndian)
                case 6: IPAddress(v6: UInt128(bigEndian: raw.loadUnaligned(as: UInt128.self)))
                default: nil
                }
            }
            return (bytes, source, record.port)
        }
    }
}
