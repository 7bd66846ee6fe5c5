import TEDModel

/// A read cursor over one datagram's bytes, for the decoder: big-endian integers and
/// sub-ranges, every read checked against the end (nil past it). It reads the bytes in
/// place, with none of `ByteBuffer`'s shared storage to check or count on each read; it
/// lives only inside the `withUnsafeReadableBytes` call that lends them.
struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    /// Where the next read starts, from the start of the datagram.
    private(set) var readerIndex: Int
    private let endIndex: Int

    init(_ bytes: UnsafeRawBufferPointer) {
        self.init(bytes, from: 0, to: bytes.count)
    }

    private init(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        self.bytes = bytes
        readerIndex = start
        endIndex = end
    }

    var readableBytes: Int { endIndex - readerIndex }

    /// The big-endian integer at `index` (from the start of the datagram), if it lies
    /// within this reader's bytes.
    func getInteger<T: FixedWidthInteger>(at index: Int, as: T.Type = T.self) -> T? {
        guard index >= readerIndex, index <= endIndex - MemoryLayout<T>.size else { return nil }
        return T(bigEndian: bytes.loadUnaligned(fromByteOffset: index, as: T.self))
    }

    mutating func readInteger<T: FixedWidthInteger>(as: T.Type = T.self) -> T? {
        guard let value = getInteger(at: readerIndex, as: T.self) else { return nil }
        readerIndex += MemoryLayout<T>.size
        return value
    }

    /// The next `length` bytes as a reader of their own.
    mutating func readSlice(length: Int) -> WireReader? {
        guard length >= 0, length <= readableBytes else { return nil }
        defer { readerIndex += length }
        return WireReader(bytes, from: readerIndex, to: readerIndex + length)
    }

    /// The next `length` bytes, copied out.
    mutating func readBytes(length: Int) -> [UInt8]? {
        guard length >= 0, length <= readableBytes else { return nil }
        defer { readerIndex += length }
        return Array(bytes[readerIndex..<readerIndex + length])
    }

    /// Skips `count` bytes (at most the readable ones).
    mutating func moveReaderIndex(forwardBy count: Int) {
        readerIndex += min(max(count, 0), readableBytes)
    }
}

extension WireReader {
    /// Reads an address of a family in network order (4 or 16 bytes).
    mutating func readAddress(_ family: IPAddress.Family) -> IPAddress? {
        switch family {
        case .v4:
            return readInteger(as: UInt32.self).map { IPAddress(v4: $0) }
        case .v6:
            guard let high = readInteger(as: UInt64.self), let low = readInteger(as: UInt64.self) else { return nil }
            return IPAddress(v6: UInt128(high) << 64 | UInt128(low))
        }
    }

    /// Reads the 16-byte TED hash and tells whether it is the right one.
    mutating func readTEDHash() -> Bool? {
        guard let high = readInteger(as: UInt64.self), let low = readInteger(as: UInt64.self) else { return nil }
        return high == Wire.hashHigh && low == Wire.hashLow
    }

    /// Whether the bytes at `index` start with the TED hash (without moving the reader).
    func hasTEDHash(at index: Int) -> Bool {
        getInteger(at: index, as: UInt64.self) == Wire.hashHigh && getInteger(at: index + 8, as: UInt64.self) == Wire.hashLow
    }
}
