import TEDModel

/// Big-endian stores into memory the codec has already reserved: the encoder knows each
/// message's exact size, so it checks capacity once instead of at every field.
struct RawWriter {
    let base: UnsafeMutableRawBufferPointer
    var offset = 0

    init(_ base: UnsafeMutableRawBufferPointer) { self.base = base }

    @inline(__always)
    mutating func write<T: FixedWidthInteger>(_ value: T) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    @inline(__always)
    mutating func write(_ address: IPAddress) {
        switch address.family {
        case .v4:
            write(UInt32(truncatingIfNeeded: address.bits))
        case .v6:
            write(UInt64(truncatingIfNeeded: address.bits >> 64))
            write(UInt64(truncatingIfNeeded: address.bits))
        }
    }

    /// ISAKMP generic payload header (RFC 2408 3.2).
    @inline(__always)
    mutating func payloadHeader(next: UInt8, bodySize: Int) {
        write(next)
        write(UInt8(0))
        write(UInt16(truncatingIfNeeded: bodySize + 4))
    }

    mutating func write(bytes: [UInt8]) {
        for byte in bytes { write(byte) }
    }

    mutating func zeros(_ count: Int) {
        if count > 0, let start = base.baseAddress {
            (start + offset).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        }
        offset += count
    }

    mutating func tedHash() {
        write(Wire.hashHigh)
        write(Wire.hashLow)
    }
}
