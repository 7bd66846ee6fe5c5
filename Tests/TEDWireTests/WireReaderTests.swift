import Testing
@testable import TEDWire

/// The decoder's read cursor: accept/reject pairs at each of its bounds, since every
/// check of the wire format rests on a read past the end being nil.
@Suite struct WireReaderTests {
    static func reading<T>(_ bytes: [UInt8], _ body: (inout WireReader) -> T) -> T {
        bytes.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            return body(&reader)
        }
    }

    @Test func readsBigEndianIntegersAndAdvances() {
        let (a, b, c, left) = Self.reading([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]) { reader in
            (reader.readInteger(as: UInt16.self), reader.readInteger(as: UInt32.self), reader.readInteger(as: UInt8.self),
             reader.readableBytes)
        }
        #expect(a == 0x0102 && b == 0x0304_0506 && c == 0x07 && left == 0)
    }

    @Test func anIntegerThatFitsExactlyIsRead() {
        #expect(Self.reading([1, 2, 3, 4]) { $0.readInteger(as: UInt32.self) } == 0x0102_0304)
    }

    @Test func anIntegerOneByteShortIsNilAndReadsNothing() {
        let (value, left) = Self.reading([1, 2, 3]) { reader in (reader.readInteger(as: UInt32.self), reader.readableBytes) }
        #expect(value == nil && left == 3)
    }

    @Test func aSliceOfAllTheBytesIsTakenOneMoreIsNot() {
        let (whole, tooLong, negative) = Self.reading([1, 2, 3]) { reader in
            var copy = reader
            return (copy.readSlice(length: 3)?.readableBytes, reader.readSlice(length: 4)?.readableBytes,
                    reader.readSlice(length: -1)?.readableBytes)
        }
        #expect(whole == 3 && tooLong == nil && negative == nil)
    }

    /// A payload's body ends where its length says, even with more datagram behind it.
    @Test func aSliceEndsAtItsLengthNotAtTheDatagramsEnd() {
        let (inside, past, after) = Self.reading([0xaa, 0xbb, 0xcc, 0xdd]) { reader in
            let body = reader.readSlice(length: 2)!
            let inside = body.getInteger(at: body.readerIndex, as: UInt16.self)
            let past = body.getInteger(at: body.readerIndex + 1, as: UInt16.self)
            return (inside, past, reader.readInteger(as: UInt16.self))
        }
        #expect(inside == 0xaabb && past == nil && after == 0xccdd)
    }

    @Test func bytesAlreadyReadAreNotReadAgain() {
        let value = Self.reading([1, 2, 3, 4]) { reader -> UInt16? in
            _ = reader.readInteger(as: UInt16.self)
            return reader.getInteger(at: 0, as: UInt16.self)
        }
        #expect(value == nil)
    }

    @Test func skippingStopsAtTheEnd() {
        let left = Self.reading([1, 2, 3]) { reader -> Int in
            reader.moveReaderIndex(forwardBy: 2)
            let two = reader.readableBytes
            reader.moveReaderIndex(forwardBy: 5)
            return two * 10 + reader.readableBytes
        }
        #expect(left == 10)
    }
}
