import NIOCore
import Testing
import TEDTestSupport
import TEDModel
@testable import TEDWire

/// Random valid messages encode then decode to equal values; no input ever traps.
@Suite struct RoundTripTests {
    typealias Generator = SeededRNG

    static func address(_ family: IPAddress.Family, _ rng: inout Generator) -> IPAddress {
        IPAddress(family: family, bits: UInt128(rng.next()) << 64 | UInt128(rng.next()))
    }

    static func pattern(_ family: IPAddress.Family, _ rng: inout Generator) -> AddressPattern {
        AddressPattern(address: address(family, &rng), mask: address(family, &rng))!
    }

    static func ports(_ proto: IPProtocol, _ rng: inout Generator) -> PortRange {
        guard !proto.isAny else { return .all }
        let a = UInt16.random(in: 0...UInt16.max, using: &rng), b = UInt16.random(in: 0...UInt16.max, using: &rng)
        return PortRange(min(a, b), max(a, b))!
    }

    static func message(_ rng: inout Generator) -> Message {
        let family: IPAddress.Family = Bool.random(using: &rng) ? .v4 : .v6
        let identity = Identity(address: address(Bool.random(using: &rng) ? .v4 : .v6, &rng), port: UInt16.random(in: 0...UInt16.max, using: &rng))
        let cookie = UInt64.random(in: 1...UInt64.max, using: &rng)
        let capabilities = Capabilities(rawValue: UInt32.random(in: 0...UInt32.max, using: &rng))
        if Bool.random(using: &rng) {
            let proto = IPProtocol(UInt8.random(in: 0...255, using: &rng))
            let summary = Packet(proto: proto, source: address(family, &rng), destination: address(family, &rng),
                                 sourcePort: Bool.random(using: &rng) ? UInt16.random(in: 0...UInt16.max, using: &rng) : nil,
                                 destinationPort: Bool.random(using: &rng) ? UInt16.random(in: 0...UInt16.max, using: &rng) : nil)!
            let proxy = Bool.random(using: &rng) ? ProxyAddress(pattern: pattern(Bool.random(using: &rng) ? .v4 : .v6, &rng), proto: proto) : nil
            return .probe(Probe(initiatorCookie: cookie, capabilities: capabilities, identity: identity, proxyAddress: proxy, summary: summary))
        }
        let entries = (0..<Int.random(in: 1...16, using: &rng)).map { _ -> Proxy in
            let proto = IPProtocol(UInt8.random(in: 0...255, using: &rng))
            return Proxy(proto: proto, initiatorSide: HalfProxy(pattern: pattern(family, &rng), ports: ports(proto, &rng)),
                         responderSide: HalfProxy(pattern: pattern(family, &rng), ports: ports(proto, &rng)))!
        }
        return .response(Response(initiatorCookie: cookie, responderCookie: UInt64.random(in: 1...UInt64.max, using: &rng),
                                  capabilities: capabilities, identity: identity, entries: entries))
    }

    @Test func randomMessagesRoundTrip() throws {
        var rng = Generator(seed: 2026)
        for _ in 0..<5000 {
            let message = Self.message(&rng)
            #expect(try TEDCodec.decode(TEDCodec.encode(message)) == message)
        }
    }

    /// Whatever the decoder accepts re-encodes to the datagram's canonical form (CanonicalForm.swift).
    @Test func everySingleByteMutationOfEveryVectorIsRejectedOrCanonical() {
        var accepted = 0
        for vector in specVectors {
            let bytes = vector.bytes
            for index in bytes.indices {
                for value: UInt8 in [0x00, 0xff, bytes[index] ^ 0x01, bytes[index] &+ 0x80] {
                    var mutated = bytes
                    mutated[index] = value
                    guard let message = try? TEDCodec.decode(ByteBuffer(bytes: mutated)) else { continue }
                    accepted += 1
                    let encoded = Array(TEDCodec.encode(message).readableBytesView)
                    #expect(canonicalForm(mutated) == encoded, "\(vector.name): byte \(index) = \(value)")
                }
                #expect((try? TEDCodec.decode(ByteBuffer(bytes: bytes.prefix(index)))) == nil, "\(vector.name): \(index) bytes")
            }
        }
        #expect(accepted > 0)
    }

    @Test func randomGarbageIsRejectedNotTrapped() {
        var rng = Generator(seed: 7)
        var rejected = 0
        for _ in 0..<20000 {
            let count = Int.random(in: 0...300, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 28, Bool.random(using: &rng) {  // plausible headers reach deeper rules
                bytes[17] = 0x10
                bytes[18] = Bool.random(using: &rng) ? 240 : 241
                bytes[19] = 0
                bytes[20...27] = [0, 0, 0, 0, 0, 0, UInt8(count >> 8), UInt8(count & 0xff)][...]
            }
            if (try? TEDCodec.decode(ByteBuffer(bytes: bytes))) == nil { rejected += 1 }
        }
        // A random datagram that is a valid message would need the 16-byte TED hash twice.
        #expect(rejected == 20000)
    }
}
