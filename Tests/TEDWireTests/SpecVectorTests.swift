import NIOCore
import Testing
import TEDModel
@testable import TEDWire

/// The normative vectors of docs/WIRE-FORMAT.md, as values.
struct Vector: CustomTestStringConvertible, Sendable {
    let name: String
    let hex: String
    let message: Message
    var testDescription: String { name }
    var bytes: [UInt8] { hexBytes(hex) }
}

func hexBytes(_ hex: String) -> [UInt8] {
    stride(from: 0, to: hex.count, by: 2).map { offset in
        let start = hex.index(hex.startIndex, offsetBy: offset)
        return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
    }
}

func pattern(_ text: String) -> AddressPattern { AddressPattern(text)! }
func half(_ text: String, _ ports: PortRange = .all) -> HalfProxy { HalfProxy(pattern: pattern(text), ports: ports) }
func ip(_ text: String) -> IPAddress { IPAddress(text)! }

let cookieI: Cookie = 0x0102_0304_0506_0708, cookieR: Cookie = 0x1112_1314_1516_1718

let specVectors: [Vector] = [
    Vector(name: "probe-v4-tcp",
           hex: "010203040506070800000000000000000d10f0000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401000000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214",
           message: .probe(Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
                                 summary: Packet(proto: .tcp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"),
                                                 sourcePort: 40000, destinationPort: 443)!))),
    Vector(name: "response-v4-one-entry",
           hex: "010203040506070811121314151617180d10f1000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f100000c011101f4c633640200000024030401000600000001bb01bb0000ffffc6120200ffffff00c6120000ffff0000",
           message: .response(Response(initiatorCookie: cookieI, responderCookie: cookieR,
                                       identity: Identity(address: ip("198.51.100.2"), port: 500),
                                       entries: [Proxy(proto: .tcp, initiatorSide: half("198.18.0.0/16"),
                                                       responderSide: half("198.18.2.0/24", .single(443)))!]))),
    Vector(name: "probe-v6-udp-proxy",
           hex: "010203040506070800000000000000000d10f00000000000000000b0050000188320355d3c37c2d95badba15e73c79f50000000305000018051101f420010db8ffff00000000000000000001f00000280611000020010db8000100000000000000000000ffffffffffff000000000000000000000000003c8320355d3c37c2d95badba15e73c79f50306110314e9003520010db800010000000000000000001020010db8000200000000000000000020",
           message: .probe(Probe(initiatorCookie: cookieI, identity: Identity(address: ip("2001:db8:ffff::1"), port: 500),
                                 proxyAddress: ProxyAddress(pattern: pattern("2001:db8:1::/48"), proto: .udp),
                                 summary: Packet(proto: .udp, source: ip("2001:db8:1::10"), destination: ip("2001:db8:2::20"),
                                                 sourcePort: 5353, destinationPort: 53)!))),
    Vector(name: "response-v6-two-entries",
           hex: "010203040506070811121314151617180d10f10000000000000000ec050000188320355d3c37c2d95badba15e73c79f500000003f1000018051101f420010db8ffff00000000000000000002000000a00306020011000000003500350400ffff20010db8000200000000000000000000ffffffffffff0000000000000000000020010db8000000000000000000000000ffffffff000000000000000000000000000000000000ffff0000ffff20010db8000000000000000000000000ffffffff00000000000000000000000020010db8000100000000000000000000ffffffffffff00000000000000000000",
           message: .response(Response(initiatorCookie: cookieI, responderCookie: cookieR,
                                       identity: Identity(address: ip("2001:db8:ffff::2"), port: 500),
                                       entries: [
                                           Proxy(proto: .udp, initiatorSide: half("2001:db8::/32", PortRange(1024, 65535)!),
                                                 responderSide: half("2001:db8:2::/48", .single(53)))!,
                                           Proxy(proto: .any, initiatorSide: half("2001:db8:1::/48"),
                                                 responderSide: half("2001:db8::/32"))!,
                                       ]))),
    Vector(name: "response-v4-wildcard-mask",
           hex: "010203040506070811121314151617180d10f1000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f100000c011101f4c63364020000002403040100000000000000ffff0000ffffc6120005ffff00ffc6120000fffe0000",
           message: .response(Response(initiatorCookie: cookieI, responderCookie: cookieR,
                                       identity: Identity(address: ip("198.51.100.2"), port: 500),
                                       entries: [Proxy(proto: .any, initiatorSide: half("198.18.0.0/15"),
                                                       responderSide: half("198.18.0.5/255.255.0.255"))!]))),
    Vector(name: "probe-v4-icmp",
           hex: "010203040506070800000000000000000d10f0000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401000000248320355d3c37c2d95badba15e73c79f50304010300080000c612010ac6120214",
           message: .probe(Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
                                 summary: Packet(proto: .icmp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"),
                                                 sourcePort: 8, destinationPort: 0)!))),
    Vector(name: "probe-v4-tcp-padded",
           hex: "010203040506070800000000000000000d10f0000000000000000130050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401f20000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214000000cc0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
           message: .probe(Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
                                 summary: Packet(proto: .tcp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"),
                                                 sourcePort: 40000, destinationPort: 443)!, padding: 200))),
    Vector(name: "challenge",
           hex: "010203040506070800000000000000000d10f2000000000000000048f30000188320355d3c37c2d95badba15e73c79f500000003000000142122232425262728292a2b2c2d2e2f30",
           message: .challenge(Challenge(initiatorCookie: cookieI, cookie: vectorCookie))),
    Vector(name: "probe-v4-tcp-cookie",
           hex: "010203040506070800000000000000000d10f0000000000000000078050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401f30000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214000000142122232425262728292a2b2c2d2e2f30",
           message: .probe(Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
                                 summary: Packet(proto: .tcp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"),
                                                 sourcePort: 40000, destinationPort: 443)!, cookie: vectorCookie))),
]

/// The cookie of vectors 8 and 9: the bytes 0x21 to 0x30.
let vectorCookie = ReturnCookie(Array(0x21...0x30))!

@Suite struct SpecVectorTests {
    @Test(arguments: specVectors)
    func encodesByteExactly(_ vector: Vector) {
        #expect(Array(TEDCodec.encode(vector.message).readableBytesView) == vector.bytes)
    }

    @Test(arguments: specVectors)
    func decodesToTheDocumentedValues(_ vector: Vector) throws {
        #expect(try TEDCodec.decode(ByteBuffer(bytes: vector.bytes)) == vector.message)
    }
}

/// The TED Padding payload (type 242): probes only, at most one, body ignored.
@Suite struct PaddingTests {
    func probe(padding: Int?) -> Probe {
        Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
              summary: Packet(proto: .udp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"),
                              sourcePort: 1, destinationPort: 53)!, padding: padding)
    }

    @Test(arguments: [0, 1, 3, 200, 3000])
    func paddedProbesRoundTrip(padding: Int) throws {
        let bytes = TEDCodec.encode(.probe(probe(padding: padding)))
        #expect(bytes.readableBytes == 100 + 4 + padding)
        #expect(try TEDCodec.decode(bytes) == .probe(probe(padding: padding)))
    }

    @Test func paddingNeverTakesAProbePast4096Bytes() throws {
        let bytes = TEDCodec.encode(.probe(probe(padding: 10_000)))
        #expect(bytes.readableBytes == 4096)
        #expect(try TEDCodec.decode(bytes) == .probe(probe(padding: 4096 - 104)))
    }

    @Test func paddingBytesAreIgnoredOnReceipt() throws {
        var bytes = Array(TEDCodec.encode(.probe(probe(padding: 8))).readableBytesView)
        for index in bytes.count - 8..<bytes.count { bytes[index] = 0xa5 }
        #expect(try TEDCodec.decode(ByteBuffer(bytes: bytes)) == .probe(probe(padding: 8)))
    }
}

/// The challenge (exchange 242) and the Cookie payload (243) that carries its cookie.
@Suite struct ChallengeTests {
    let summary = Packet(proto: .udp, source: ip("198.18.1.10"), destination: ip("198.18.2.20"), sourcePort: 1, destinationPort: 53)!

    @Test(arguments: [8, 16, 32])
    func challengesAndEchoesRoundTrip(size: Int) throws {
        let cookie = try #require(ReturnCookie(Array(repeating: 0xa5, count: size)))
        let challenge = Message.challenge(Challenge(initiatorCookie: cookieI, cookie: cookie))
        let bytes = TEDCodec.encode(challenge)
        #expect(bytes.readableBytes == 56 + size && bytes.readableBytes == TEDCodec.challengeSize(cookieSize: size))
        #expect(try TEDCodec.decode(bytes) == challenge)
        for padding in [nil, 0, 40] {
            let probe = Probe(initiatorCookie: cookieI, identity: Identity(address: ip("198.51.100.1"), port: 500),
                              summary: summary, padding: padding, cookie: cookie)
            #expect(try TEDCodec.decode(TEDCodec.encode(.probe(probe))) == .probe(probe))
        }
    }

    @Test func cookiesHold8To32Bytes() {
        #expect(ReturnCookie(Array(repeating: 0, count: 7)) == nil)
        #expect(ReturnCookie(Array(repeating: 0, count: 8)) != nil)
        #expect(ReturnCookie(Array(repeating: 0, count: 32)) != nil)
        #expect(ReturnCookie(Array(repeating: 0, count: 33)) == nil)
    }

    /// The smallest probe (100 bytes) is larger than the largest challenge (88 bytes).
    @Test func aChallengeIsNeverLargerThanAProbe() {
        #expect(TEDCodec.challengeSize(cookieSize: ReturnCookie.sizes.upperBound) == 88)
        #expect(TEDCodec.encode(.probe(Probe(initiatorCookie: 1, identity: Identity(address: ip("198.51.100.1"), port: 0),
                                             summary: summary))).readableBytes == 100)
    }
}

/// No amplification (spec section 1): how many entries a response may carry for a probe
/// size, at the byte where one more entry fits.
@Suite struct AmplificationBoundTests {
    @Test func entriesFitThreeTimesTheProbe() {
        // An IPv4 response from an IPv4 identity is 72 bytes plus 28 per entry.
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 107, identity: .v4, family: .v4) == 8)   // 321 < 324
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 108, identity: .v4, family: .v4) == 9)   // 324 = 72 + 9 * 28
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 1, identity: .v6, family: .v6) == 1)     // entry 1 always
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 4096, identity: .v4, family: .v4) == 16) // at most 16
        // Vector 7's padding (200 bytes, 304 in all) is enough for all 16 IPv4 entries.
        #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: 304, identity: .v6, family: .v4) == 16)
    }

    @Test func paddingIsJustEnough() throws {
        for wanted in 2...16 {
            let padding = TEDCodec.paddingForEntries(wanted, identity: .v4, proxy: nil, summary: .v4)
            let size = 100 + (padding.map { 4 + $0 } ?? 0)
            #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: size, identity: .v6, family: .v4) >= wanted)
            if let padding, padding > 0 {
                #expect(TEDCodec.entriesWithinAmplificationBound(probeSize: size - 1, identity: .v6, family: .v4) < wanted)
            }
        }
    }
}
