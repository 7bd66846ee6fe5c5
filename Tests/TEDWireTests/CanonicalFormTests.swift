import NIOCore
import Testing
import TEDTestSupport
@testable import TEDWire

/// The oracle of the fuzz target, checked here on known datagrams: an accepted datagram
/// re-encodes to exactly its canonical form, and the canonical form is a fixed point.
@Suite struct CanonicalFormTests {
    static func encoded(_ bytes: [UInt8]) -> [UInt8]? {
        guard let message = try? TEDCodec.decode(ByteBuffer(bytes: bytes)) else { return nil }
        return Array(TEDCodec.encode(message).readableBytesView)
    }

    @Test(arguments: specVectors)
    func eachVectorIsCanonical(_ vector: Vector) throws {
        let canonical = try #require(canonicalForm(vector.bytes))
        #expect(Self.encoded(vector.bytes) == canonical)
        #expect(canonical == vector.bytes)
        #expect(canonicalForm(canonical) == canonical)
    }

    /// A fuzz crasher: an IPv6 summary that says protocol 1 (`icmp`, as an ACL writes it)
    /// must keep its byte; the model reads it as ICMPv6 only when it matches policy.
    @Test func anIPv6SummaryOfProtocolOneKeepsItsByte() throws {
        let hex = "010203040506070800000000000000000d10f00000000000000000b0050000188320355d3c37c2d95badba15e73c79f5"
            + "0000000305000018051101f420010db8ffff00000000000000000001f00000280611000020010db8000100000000000000"
            + "000000ffffffffffff000000000000000000000000003c8320355d3c37c2d95badba15e73c79f503060100140301e92035"
            + "0db800010000000000000000001020010db8000200000000000000000020"
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(try #require(UInt8(hex[index..<next], radix: 16)))
            index = next
        }
        let canonical = try #require(canonicalForm(bytes))
        #expect(Self.encoded(bytes) == canonical)
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

    /// What the fuzz target does, in little: flips, insertions, deletions and splices of the
    /// vectors and the twins; every datagram that the decoder accepts must be canonical.
    @Test func randomEditsThatDecodeAreCanonical() {
        var rng = SeededRNG(seed: 14)
        let seeds = specVectors.map(\.bytes) + RejectReasonTests.cases.flatMap(\.twins)
        var accepted = 0
        for _ in 0..<20000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                case 2: if bytes.count > 28 { bytes.remove(at: index) }
                default:
                    let other = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                    let start = Int.random(in: 0..<other.count, using: &rng)
                    bytes.insert(contentsOf: other[start..<min(other.count, start + 24)], at: index)
                }
            }
            // Keep the header's length right half of the time, so that edits reach the payloads.
            if bytes.count >= 28, Bool.random(using: &rng) {
                let total = bytes.count
                bytes[24...27] = [UInt8(total >> 24 & 0xff), UInt8(total >> 16 & 0xff), UInt8(total >> 8 & 0xff),
                                  UInt8(total & 0xff)][...]
            }
            guard let encoded = Self.encoded(bytes) else { continue }
            accepted += 1
            #expect(canonicalForm(bytes) == encoded, "\(bytes.map { String($0, radix: 16) })")
        }
        #expect(accepted > 500)
    }
}
