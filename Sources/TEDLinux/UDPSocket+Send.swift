import CTEDLinux
import TEDModel

extension UDPSocket {
    /// Datagrams waiting to be sent together, copied into storage kept from one batch to
    /// the next: appending a datagram allocates nothing once the storage has grown.
    public struct SendBatch {
        private var storage: [UInt8] = []
        private var offsets: [Int] = []
        private var destinations: [IPAddress] = []
        private var records: [ted_datagram] = []
        private var errors: [Int32] = []

        public init() {}

        public var count: Int { records.count }
        public var isEmpty: Bool { records.isEmpty }

        /// Queues a copy of `bytes` for `address`:`port`.
        public mutating func append(_ bytes: UnsafeRawBufferPointer, to address: IPAddress, port: UInt16) {
            var record = ted_datagram()
            record.length = bytes.count
            record.family = address.family.rawValue
            record.port = port
            let byteCount = address.family.byteCount
            withUnsafeMutableBytes(of: &record.address) { out in
                for position in 0..<byteCount {
                    out[position] = UInt8(truncatingIfNeeded: address.bits >> (8 * (byteCount - 1 - position)))
                }
            }
            offsets.append(storage.count)
            destinations.append(address)
            storage.append(contentsOf: bytes)
            records.append(record)
        }

        /// Sends every queued datagram on `fd`, whose family is `socketFamily`, `batch` per
        /// `sendmmsg`, and empties the batch. Calls `failed` with the destination and errno of
        /// each datagram not sent (EAGAIN: dropped because the socket's buffer was full).
        public mutating func send(on fd: Int32, socketFamily: IPAddress.Family,
                                  failed: (IPAddress, Int32) -> Void) {
            let total = records.count
            guard total > 0 else { return }
            if errors.count < total { errors = [Int32](repeating: 0, count: total) }
            storage.withUnsafeBytes { raw in
                // The storage no longer grows: its pointers hold for the whole call.
                for index in 0..<total { records[index].data = raw.baseAddress.map { UnsafeRawPointer($0 + offsets[index]) } }
                records.withUnsafeBufferPointer { records in
                    errors.withUnsafeMutableBufferPointer { errors in
                        var start = 0
                        while start < total {
                            let count = min(total - start, UDPSocket.batch)
                            for index in start..<(start + count) { errors[index] = 0 }
                            _ = ted_send_datagrams(fd, socketFamily.rawValue, records.baseAddress! + start, Int32(count),
                                                   errors.baseAddress! + start)
                            start += count
                        }
                    }
                }
            }
            for index in 0..<total where errors[index] != 0 { failed(destinations[index], errors[index]) }
            storage.removeAll(keepingCapacity: true)
            offsets.removeAll(keepingCapacity: true)
            destinations.removeAll(keepingCapacity: true)
            records.removeAll(keepingCapacity: true)
        }
    }
}
