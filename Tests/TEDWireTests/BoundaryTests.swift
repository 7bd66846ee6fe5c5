import NIOCore
import Testing
import TEDModel
@testable import TEDWire

/// Accept/reject pairs at each boundary of spec sections 3 and 4.
@Suite struct BoundaryTests {
    static let probe = specVectors[0].bytes
    static let response = specVectors[1].bytes

    /// Appends unknown payloads (type 99) after the last one so the chain has `count` payloads
    /// and sets the header length; `padding` extra bytes go into the last unknown payload.
    static func withPayloads(_ base: [UInt8], count: Int, padding: Int = 0) -> [UInt8] {
        var bytes = base
        var last = 28, next = Int(bytes[16]), existing = 0
        var offset = 28
        while next != 0 {
            existing += 1
            last = offset
            next = Int(bytes[offset])
            offset += Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        }
        let extra = count - existing
        if extra > 0 {
            bytes[last] = 99
            for index in 0..<extra {
                let body = index == extra - 1 ? padding : 0
                let length = 4 + body
                bytes += [index == extra - 1 ? 0 : 99, 0, UInt8(length >> 8), UInt8(length & 0xff)] + Array(repeating: 0, count: body)
            }
        }
        let total = bytes.count
        bytes[24...27] = [UInt8(total >> 24), UInt8(total >> 16 & 0xff), UInt8(total >> 8 & 0xff), UInt8(total & 0xff)][...]
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> Result<Message, DecodeError> {
        Result { () throws(DecodeError) -> Message in try TEDCodec.decode(ByteBuffer(bytes: bytes)) }
    }

    @Test func accepts16PayloadsRejects17() {
        #expect((try? Self.decode(Self.withPayloads(Self.probe, count: 16)).get()) != nil)
        #expect(Self.decode(Self.withPayloads(Self.probe, count: 17)).reason == .tooManyPayloads)
    }

    @Test func accepts4096BytesRejects4097() {
        let base = Self.withPayloads(Self.probe, count: 4).count
        let exact = Self.withPayloads(Self.probe, count: 5, padding: 4096 - base - 4)
        #expect(exact.count == 4096)
        #expect((try? Self.decode(exact).get()) != nil)
        let over = Self.withPayloads(Self.probe, count: 5, padding: 4097 - base - 4)
        #expect(over.count == 4097 && Self.decode(over).reason == .tooLong)
    }

    @Test func accepts28ByteHeaderBoundaryRejects27() {
        #expect(Self.decode(Array(Self.probe.prefix(27))).reason == .tooShort)
        #expect(Self.decode(Array(Self.probe.prefix(28))).reason == .lengthMismatch)
    }

    static func response(entries: Int) -> Message {
        let entry = Proxy(proto: .tcp, initiatorSide: HalfProxy(pattern: AddressPattern("198.18.0.0/16")!),
                          responderSide: HalfProxy(pattern: AddressPattern("198.18.2.0/24")!, ports: .single(443)))!
        return .response(Response(initiatorCookie: 1, responderCookie: 2,
                                  identity: Identity(address: IPAddress("198.51.100.2")!, port: 500),
                                  entries: Array(repeating: entry, count: entries)))
    }

    @Test func accepts16EntriesRejects17() {
        let sixteen = Array(TEDCodec.encode(Self.response(entries: 16)).readableBytesView)
        #expect((try? Self.decode(sixteen).get()) == Self.response(entries: 16))
        // The encoder never sends 17; forge the count and one more entry by hand.
        var forged = sixteen
        let responseHeader = 28 + 24 + 12
        forged[responseHeader + 6] = 17
        let entryBytes = Array(sixteen.suffix(28))
        forged += entryBytes
        let payloadLength = Int(forged[responseHeader + 2]) << 8 | Int(forged[responseHeader + 3]) + 28
        forged[responseHeader + 2] = UInt8(payloadLength >> 8)
        forged[responseHeader + 3] = UInt8(payloadLength & 0xff)
        let total = forged.count
        forged[26] = UInt8(total >> 8)
        forged[27] = UInt8(total & 0xff)
        #expect(Self.decode(forged).reason == .tooManyEntries)
    }

    @Test func portRangeEqualAcceptedInvertedRejected() {
        var bytes = Self.response  // entry ports: responder 443-443 at entry offset 4..7
        let entry = 28 + 24 + 12 + 4 + 4
        #expect((try? Self.decode(bytes).get()) != nil)
        bytes[entry + 7] = 0xba  // high 0x01ba = 442 < low 443
        #expect(Self.decode(bytes).reason == .portRangeInverted)
    }

    @Test func unknownPayloadsAndForeignVendorIDsAreSkipped() {
        var bytes = Self.withPayloads(Self.probe, count: 6, padding: 3)
        #expect((try? Self.decode(bytes).get()) == specVectors[0].message)
        // A foreign vendor ID (type 13, another hash) appended after the summary.
        bytes = Self.probe
        bytes[28 + 24 + 12] = 13  // the summary's next payload
        bytes += [0, 0, 0, 24] + Array(repeating: 0x42, count: 20)
        bytes[27] = UInt8(bytes.count)
        #expect((try? Self.decode(bytes).get()) == specVectors[0].message)
    }
}

extension Result where Failure == DecodeError {
    var reason: DecodeError.Reason? {
        if case .failure(let error) = self { return error.reason }
        return nil
    }
}
