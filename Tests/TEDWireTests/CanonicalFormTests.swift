import NIOCore
import Testing
@testable import TEDWire

/// The oracle of the fuzz target, checked here on known datagrams: an accepted datagram
/// re-encodes to exactly its canonical form, and the canonical form is a fixed point.
@Suite struct CanonicalFormTests {
    static func encoded(_ bytes: [UInt8]) -> [UInt8]? {
        guard let message = try? TEDCodec.decode(ByteBuffer(bytes: bytes)) else { return nil }
        return Array(TEDCodec.encode(message).readableBytesView)
    }

    @Test(arguments: specVectors)
    func eachVectorIsCanonicalButForItsDocumentedDefect(_ vector: Vector) throws {
        let canonical = try #require(canonicalForm(vector.bytes))
        #expect(Self.encoded(vector.bytes) == canonical)
        // Only vector 4 sends an unmasked address (SpecVectorTests): canonical masks it.
        #expect((canonical == vector.bytes) == (vector.name != "response-v6-two-entries"))
        #expect(canonicalForm(canonical) == canonical)
    }

    @Test func everyAcceptedTwinOfTheRejectReasonsReencodesToItsCanonicalForm() throws {
        var checked = 0
        for test in RejectReasonTests.cases {
            for bytes in test.twins {
                guard let encoded = Self.encoded(bytes) else { continue }
                checked += 1
                #expect(canonicalForm(bytes) == encoded, "\(test.reason) twin of \(bytes.count) bytes")
            }
        }
        #expect(checked > 30)
    }

    @Test func liberallyWrittenDatagramsReencodeToTheirCanonicalForm() throws {
        let base = RejectReasonTests.probe
        let liberal = base.with {
            $0.payloads.insert((99, [1, 2, 3]), at: 1)                          // unknown payload
            $0.payloads.insert((13, Array(repeating: 9, count: 20)), at: 0)     // foreign vendor ID
            $0.payloads.swapAt(1, 3)                                            // another order
            $0.payloads.append((5, [4, 0, 0x12, 0x34, 10, 1, 0x77, 0x77, 255, 255, 0, 0]))  // proxy: port, unmasked
        }
        let canonical = try #require(canonicalForm(liberal.bytes))
        #expect(canonical != liberal.bytes)
        #expect(Self.encoded(liberal.bytes) == canonical)
    }

    @Test func bytesTheEncoderNeverWritesStayInTheCanonicalForm() throws {
        // An accepted datagram never has these; were one accepted, the oracle would see it.
        let extra = RejectReasonTests.answer.with { $0.payloads[2] = RejectReasonTests.response(extra: [0]) }
        let canonical = try #require(canonicalForm(extra.bytes))
        #expect(canonical.count == extra.bytes.count)
        let trailing = RejectReasonTests.probe.with { $0.trailing = [0] }
        #expect(canonicalForm(trailing.bytes)?.count == trailing.bytes.count)
    }
}
