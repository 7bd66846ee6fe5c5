import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// Datagrams built payload by payload, each breaking one rule of spec section 3 or 4.
@Suite struct HostileDatagramTests {
    typealias RawMessage = RawISAKMP
    static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] { RawISAKMP.be(value) }
    static let tedHash = RawISAKMP.tedHash
    static let vendorID = RawISAKMP.vendorID
    static let identity = RawISAKMP.identity
    static let proxyAddress = RawISAKMP.proxyAddress
    /// tcp 10.1.0.5:40000 -> 10.2.0.7:443.
    static let summary: (type: UInt8, body: [UInt8]) =
        (240, tedHash + [3, 4, 6, 3] + be(UInt16(40000)) + be(UInt16(443)) + [10, 1, 0, 5, 10, 2, 0, 7])
    /// One IPv4 entry: tcp, responder side 10.2.0.0/16 port 443, initiator side 10.1.0.0/16.
    static func entry(proto: UInt8 = 6, responderPorts: (UInt16, UInt16) = (443, 443),
                      initiatorPorts: (UInt16, UInt16) = (0, 65535)) -> [UInt8] {
        [proto, 0, 0, 0] + be(responderPorts.0) + be(responderPorts.1) + be(initiatorPorts.0) + be(initiatorPorts.1)
            + [10, 2, 0, 0, 255, 255, 0, 0, 10, 1, 0, 0, 255, 255, 0, 0]
    }
    static func responseBody(count: UInt8 = 1, entries: [[UInt8]] = [entry()], tedVersion: UInt8 = 3,
                             ipVersion: UInt8 = 4) -> (type: UInt8, body: [UInt8]) {
        (241, [tedVersion, ipVersion, count, 0] + entries.joined())
    }

    static var probe: RawMessage { RawMessage(payloads: [vendorID, identity, proxyAddress, summary]) }
    static var response: RawMessage {
        RawMessage(responderCookie: 0x1112_1314_1516_1718, exchange: 241,
                   payloads: [vendorID, (5, [1, 17, 0x01, 0xf4, 198, 51, 100, 2]), responseBody()])
    }

    /// One broken datagram per rule; `name` says which and `reason` is the one it must get.
    static var broken: [(name: String, reason: DecodeError.Reason, bytes: ByteBuffer)] {
        var cases: [(String, DecodeError.Reason, ByteBuffer)] = []
        func add(_ name: String, _ reason: DecodeError.Reason, _ base: RawMessage, _ change: (inout RawMessage) -> Void) {
            var message = base
            change(&message)
            cases.append((name, reason, ByteBuffer(bytes: message.bytes)))
        }
        cases.append(("shorter than a header", .tooShort, ByteBuffer(bytes: Array(probe.bytes.prefix(27)))))
        cases.append(("empty", .tooShort, ByteBuffer()))
        add("length field too large", .lengthMismatch, probe) { $0.lengthSkew = 1 }
        add("length field too small", .lengthMismatch, probe) { $0.lengthSkew = -1 }
        add("over 4096 bytes", .tooLong, probe) { $0.payloads.append((99, Array(repeating: 0, count: 4100))) }
        add("version", .badVersion, probe) { $0.version = 0x20 }
        add("exchange type", .badExchangeType, probe) { $0.exchange = 34 }
        add("flags", .nonZeroFlags, probe) { $0.flags = 1 }
        add("message ID", .nonZeroMessageID, probe) { $0.messageID = 1 }
        add("zero initiator cookie", .zeroInitiatorCookie, probe) { $0.initiatorCookie = 0 }
        add("probe with responder cookie", .nonZeroResponderCookie, probe) { $0.responderCookie = 5 }
        add("response without responder cookie", .zeroResponderCookie, response) { $0.responderCookie = 0 }
        add("payload length below 4", .payloadTooShort, probe) { $0.payloadLength = (1, 3) }
        add("payload past the end", .truncatedPayload, probe) { $0.payloadLength = (3, 200) }
        add("17 payloads", .tooManyPayloads, probe) { $0.payloads += Array(repeating: (99, [1]), count: 13) }
        add("bytes after the last payload", .trailingBytes, probe) { $0.trailing = [0, 0, 0, 0] }
        add("no summary", .missingSummary, probe) { $0.payloads.removeLast() }
        add("no vendor ID", .missingVendorID, probe) { $0.payloads.removeFirst() }
        add("no identity", .missingIdentity, probe) { $0.payloads.removeAll { $0.type == 5 } }
        add("two summaries", .duplicateSummary, probe) { $0.payloads.append(summary) }
        add("two vendor IDs", .duplicateVendorID, probe) { $0.payloads.append(vendorID) }
        add("three ID payloads", .tooManyIDs, probe) { $0.payloads.append(proxyAddress) }
        add("summary in a response", .unexpectedPayload, response) { $0.payloads.append(summary) }
        add("response without entries", .missingResponse, response) { $0.payloads.removeLast() }
        add("two response payloads", .duplicateResponse, response) { $0.payloads.append(responseBody()) }
        add("response payload in a probe", .unexpectedPayload, probe) { $0.payloads.append(responseBody()) }
        add("short summary", .badPayloadSize, probe) { $0.payloads[3].body.removeLast() }
        add("short vendor ID", .badPayloadSize, probe) { $0.payloads[0].body.removeLast() }
        add("short identity", .badPayloadSize, probe) { $0.payloads[1].body.removeLast() }
        add("identity of a subnet type", .badIDType, probe) { $0.payloads[1].body[0] = 4 }
        add("short proxy address", .badPayloadSize, probe) { $0.payloads[2].body.removeLast() }
        add("summary hash", .badHash, probe) { $0.payloads[3].body[0] ^= 1 }
        add("summary TED version", .badTEDVersion, probe) { $0.payloads[3].body[16] = 2 }
        add("summary IP version", .badIPVersion, probe) { $0.payloads[3].body[17] = 5 }
        add("summary IP version not its size", .badPayloadSize, probe) { $0.payloads[3].body[17] = 6 }
        add("summary flag bits", .badSummaryFlags, probe) { $0.payloads[3].body[19] = 0x7 }
        add("response TED version", .badTEDVersion, response) { $0.payloads[2] = responseBody(tedVersion: 2) }
        add("response IP version", .badIPVersion, response) { $0.payloads[2] = responseBody(ipVersion: 5) }
        add("zero entries", .badEntryCount, response) { $0.payloads[2] = responseBody(count: 0, entries: []) }
        add("17 entries", .tooManyEntries, response) { $0.payloads[2] = responseBody(count: 17, entries: Array(repeating: entry(), count: 17)) }
        add("entry count disagrees", .badPayloadSize, response) { $0.payloads[2] = responseBody(count: 2) }
        add("responder ports reversed", .portRangeInverted, response) { $0.payloads[2] = responseBody(entries: [entry(responderPorts: (444, 443))]) }
        add("initiator ports reversed", .portRangeInverted, response) { $0.payloads[2] = responseBody(entries: [entry(initiatorPorts: (2, 1))]) }
        add("any protocol with ports", .portsWithAnyProtocol, response) { $0.payloads[2] = responseBody(entries: [entry(proto: 0)]) }
        add("two responder IDs", .tooManyIDs, response) { $0.payloads.append((5, [1, 17, 0, 0, 1, 2, 3, 4])) }
        add("two paddings", .duplicatePadding, probe) { $0.payloads += [(242, [0]), (242, [])] }
        add("padding in a response", .unexpectedPayload, response) { $0.payloads.append((242, [0, 0])) }
        add("challenge without a cookie", .missingCookie, probe) { $0.exchange = 242; $0.payloads = [vendorID] }
        add("two cookies", .duplicateCookie, probe) { $0.payloads += [(243, Array(1...16)), (243, Array(1...16))] }
        return cases
    }

    @Test func theBuilderMakesValidMessages() throws {
        guard case .probe(let probe) = try TEDCodec.decode(ByteBuffer(bytes: Self.probe.bytes)) else {
            Issue.record("the built probe is not a probe")
            return
        }
        #expect(probe.summary == packet("tcp 10.1.0.5:40000 10.2.0.7:443"))
        #expect(probe.proxyAddress == ProxyAddress(pattern: pattern("10.1.0.0/16"), proto: .tcp))
        guard case .response(let response) = try TEDCodec.decode(ByteBuffer(bytes: Self.response.bytes)) else {
            Issue.record("the built response is not a response")
            return
        }
        #expect(response.entries == [proxy("tcp 10.1.0.0/16 10.2.0.0/16 eq 443")])
        // Unknown payloads and foreign vendor IDs are skipped.
        var padded = Self.probe
        padded.payloads.insert((99, [1, 2, 3]), at: 1)
        padded.payloads.insert((13, Array(repeating: 7, count: 20)), at: 0)
        #expect(try TEDCodec.decode(ByteBuffer(bytes: padded.bytes)) == TEDCodec.decode(ByteBuffer(bytes: Self.probe.bytes)))
    }

    @Test func responderDropsEveryBrokenDatagramAndCountsEveryReason() throws {
        var responder = Responder(policy: policy("permit tcp 10.2.0.0/16 10.1.0.0/16"), identity: responderIdentity,
                                  settings: generousResponderSettings())
        var seen = Set<DecodeError.Reason>()
        for (name, expected, bytes) in Self.broken {
            let action = responder.received(bytes, from: ip("10.1.0.5"), port: 40000, now: t0)
            guard case .drop(.rejected(let reason)) = action else {
                Issue.record("\(name): \(action)")
                continue
            }
            #expect(reason == expected, "\(name)")
            seen.insert(reason)
        }
        let missing = Set(DecodeError.Reason.allCases).subtracting(seen)
        #expect(missing.isEmpty, "no broken datagram produced \(missing.map(\.rawValue).sorted())")
        #expect(responder.counters.drops.values.reduce(0, +) == Self.broken.count)
        #expect(responder.received(ByteBuffer(bytes: Self.probe.bytes), from: ip("10.1.0.5"), port: 40000, now: t0).replyBytes != nil)
    }

    @Test func initiatorRejectsEveryBrokenDatagramAndKeepsWaiting() throws {
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity)
        var rng = SeededRNG(seed: 41)
        let p = packet("tcp 10.1.0.5:40000 10.2.0.7:443")
        let probe = try #require(initiator.packet(p, now: t0, rng: &rng).sentProbe)
        for (name, expected, bytes) in Self.broken {
            let actions = initiator.received(bytes, from: ip("198.51.100.2"), port: 500, now: t0)
            #expect(actions == .rejected(.undecodable(expected)), "\(name)")
        }
        #expect(initiator.counters.rejects.values.reduce(0, +) == Self.broken.count)
        var answer = Self.response
        answer.initiatorCookie = probe.cookie
        #expect(initiator.received(ByteBuffer(bytes: answer.bytes), from: ip("198.51.100.2"), port: 500, now: at(10))
            .discovery != nil)
    }

    @Test(arguments: 0..<8)
    func randomBytesNeverTrapEitherSide(seed: Int) {
        var rng = SeededRNG(seed: UInt64(seed) &+ 1000)
        var responder = Responder(policy: policy("permit ip any any"), identity: responderIdentity,
                                  settings: generousResponderSettings())
        var initiator = Initiator(policy: policy("permit ip any any"), identity: initiatorIdentity)
        let templates = [Self.probe.bytes, Self.response.bytes]
        for round in 0..<1000 {
            var bytes = templates[round % 2]
            if round % 4 < 2 {
                // Keep the header valid, scramble the payloads: this reaches the payload parser.
                for index in 28..<bytes.count where Int.random(in: 0..<8, using: &rng) == 0 {
                    bytes[index] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            _ = responder.received(ByteBuffer(bytes: bytes), from: ip("10.1.0.5"), port: 1, now: t0)
            _ = initiator.received(ByteBuffer(bytes: bytes), from: ip("10.1.0.5"), port: 1, now: t0)
        }
        #expect(responder.counters.received == 1000)
        #expect(responder.counters.totalDrops + responder.counters.replies == 1000)
        #expect(responder.received(ByteBuffer(bytes: Self.probe.bytes), from: ip("10.1.0.5"), port: 1, now: t0).replyBytes != nil)
    }
}
