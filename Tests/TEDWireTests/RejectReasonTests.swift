import NIOCore
import Testing
import TEDModel
import TEDTestSupport
@testable import TEDWire

/// Every `DecodeError.Reason` pinned: the smallest datagrams that break exactly one rule of
/// spec sections 2-4 get that reason and no other, each beside its twin across the same
/// boundary, which is accepted (or, where no accepted twin can exist, gets the next rule's reason).
@Suite struct RejectReasonTests {
    typealias Datagram = RawISAKMP
    static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] { RawISAKMP.be(value) }
    static let hash = RawISAKMP.tedHash
    static let vendorID = RawISAKMP.vendorID
    static let identity = RawISAKMP.identity
    static let proxyAddress = RawISAKMP.proxyAddress
    static func summary(tedVersion: UInt8 = 3, ipVersion: UInt8 = 4, flags: UInt8 = 3,
                        extra: [UInt8] = []) -> (type: UInt8, body: [UInt8]) {
        (240, hash + [tedVersion, ipVersion, 6, flags] + be(UInt16(40000)) + be(UInt16(443))
            + [10, 1, 0, 5, 10, 2, 0, 7] + extra)
    }
    static func entry(proto: UInt8 = 6, responderPorts: (UInt16, UInt16) = (443, 443),
                      initiatorPorts: (UInt16, UInt16) = (0, 65535)) -> [UInt8] {
        [proto, 0, 0, 0] + be(responderPorts.0) + be(responderPorts.1) + be(initiatorPorts.0) + be(initiatorPorts.1)
            + [10, 2, 0, 0, 255, 255, 0, 0, 10, 1, 0, 0, 255, 255, 0, 0]
    }
    static func response(count: UInt8 = 1, entries: [[UInt8]] = [entry()], tedVersion: UInt8 = 3,
                         ipVersion: UInt8 = 4, extra: [UInt8] = []) -> (type: UInt8, body: [UInt8]) {
        (241, [tedVersion, ipVersion, count, 0] + entries.joined() + extra)
    }

    /// The smallest valid probe and response (100 bytes each).
    static let probe = Datagram(payloads: [vendorID, identity, summary()])
    static let answer = Datagram(responderCookie: 0x1112_1314_1516_1718, exchange: 241,
                                 payloads: [vendorID, (5, [1, 17, 0x01, 0xf4, 198, 51, 100, 2]), response()])
    /// The challenge ted sends (72 bytes): Vendor ID and a 16-byte cookie.
    static let cookie: (type: UInt8, body: [UInt8]) = (243, Array(1...16))
    static let challenge = Datagram(exchange: 242, payloads: [vendorID, cookie])
    /// A probe grown to `size` bytes by one unknown payload (type 99) at the end.
    static func probe(size: Int) -> Datagram {
        probe.with { $0.payloads.append((99, Array(repeating: 0, count: size - 100 - 4))) }
    }
    static func unknownPayloads(_ count: Int) -> [(type: UInt8, body: [UInt8])] {
        Array(repeating: (99, []), count: count)
    }

    /// What a twin must decode to: accepted, or rejected for another (later) rule.
    enum Twin: Sendable {
        case accepted
        case rejected(DecodeError.Reason)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let reason: DecodeError.Reason
        /// Each of these breaks exactly the rule behind `reason`.
        let rejected: [[UInt8]]
        /// Each of these stands just across the same boundary.
        let twins: [[UInt8]]
        let twin: Twin
        var testDescription: String { reason.rawValue }

        init(_ reason: DecodeError.Reason, _ rejected: [Datagram], _ twins: [Datagram], _ twin: Twin = .accepted) {
            self.reason = reason
            self.rejected = rejected.map(\.bytes)
            self.twins = twins.map(\.bytes)
            self.twin = twin
        }

        init(_ reason: DecodeError.Reason, raw rejected: [[UInt8]], _ twins: [Datagram], _ twin: Twin) {
            self.reason = reason
            self.rejected = rejected
            self.twins = twins.map(\.bytes)
            self.twin = twin
        }
    }

    static let cases: [Case] = {
        let p = probe, r = answer, c = challenge
        let echo = p.with { $0.payloads.append(cookie) }
        let header = Datagram()  // 28 bytes, no payload at all
        return [
            Case(.tooShort, raw: [Array(header.bytes.prefix(27)), []], [header], .rejected(.missingVendorID)),
            Case(.tooLong, [probe(size: 4097)], [probe(size: 4096)]),
            Case(.lengthMismatch, [p.with { $0.lengthSkew = 1 }, p.with { $0.lengthSkew = -1 },
                                   p.with { $0.lengthSkew = 4096 }], [p]),
            Case(.badVersion, [p.with { $0.version = 0x11 }, p.with { $0.version = 0x20 }, p.with { $0.version = 0 }], [p]),
            Case(.badExchangeType, [p.with { $0.exchange = 243 }, p.with { $0.exchange = 239 },
                                    c.with { $0.exchange = 243 }, p.with { $0.exchange = 34 }], [p, r, c]),
            Case(.nonZeroFlags, (0..<8).map { bit in p.with { $0.flags = 1 << bit } }, [p]),
            Case(.nonZeroMessageID, [p.with { $0.messageID = 1 }, p.with { $0.messageID = 0x8000_0000 }], [p]),
            Case(.zeroInitiatorCookie, [p.with { $0.initiatorCookie = 0 }, r.with { $0.initiatorCookie = 0 }],
                 [p.with { $0.initiatorCookie = 1 }, r.with { $0.initiatorCookie = 1 }]),
            Case(.nonZeroResponderCookie, [p.with { $0.responderCookie = 1 }, c.with { $0.responderCookie = 1 }], [p, c]),
            Case(.zeroResponderCookie, [r.with { $0.responderCookie = 0 }], [r.with { $0.responderCookie = 1 }]),
            Case(.payloadTooShort, [p.with { $0.payloads.append((99, [])); $0.payloadLength = (3, 3) },
                                    p.with { $0.payloadLength = (0, 0) }],
                 [p.with { $0.payloads.append((99, [])) }]),
            Case(.truncatedPayload, [p.with { $0.payloadLength = (2, 37) }, p.with { $0.danglingNext = true },
                                     p.with { $0.danglingNext = true; $0.trailing = [0, 0, 0] }],
                 [p.with { $0.payloadLength = (2, 36) }]),
            Case(.tooManyPayloads, [p.with { $0.payloads += unknownPayloads(14) }],
                 [p.with { $0.payloads += unknownPayloads(13) }]),
            Case(.trailingBytes, [p.with { $0.trailing = [0] }, r.with { $0.trailing = [0, 0, 0, 4] }], [p, r]),
            Case(.missingVendorID, [header, p.with { $0.payloads.removeFirst() }], [p]),
            Case(.missingIdentity, [p.with { $0.payloads.remove(at: 1) }, r.with { $0.payloads.remove(at: 1) }], [p, r]),
            Case(.missingSummary, [p.with { $0.payloads.removeLast() }], [p]),
            Case(.missingResponse, [r.with { $0.payloads.removeLast() }], [r]),
            Case(.missingCookie, [c.with { $0.payloads.removeLast() }, c.with { $0.payloads[1].type = 99 }], [c]),
            Case(.duplicateCookie, [echo.with { $0.payloads.append(cookie) }, c.with { $0.payloads.append(cookie) }],
                 [echo, c, echo.with { $0.payloads.append((99, cookie.body)) }]),
            Case(.duplicateVendorID, [p.with { $0.payloads.append(vendorID) }, r.with { $0.payloads.append(vendorID) }],
                 [p.with { $0.payloads.append((13, Array(repeating: 7, count: 20))) },
                  p.with { $0.payloads.append((13, Array(hash.prefix(8)) + Array(repeating: 7, count: 12))) },
                  p.with { $0.payloads.append((13, Array(repeating: 0, count: 8) + Array(hash.suffix(8)) + [0, 0, 0, 0])) }]),
            Case(.duplicateSummary, [p.with { $0.payloads.append(summary()) }], [p]),
            Case(.duplicateResponse, [r.with { $0.payloads.append(response()) }], [r]),
            Case(.duplicatePadding, [p.with { $0.payloads += [(242, [0]), (242, [])] }], [p.with { $0.payloads.append((242, [0])) }]),
            Case(.tooManyIDs, [p.with { $0.payloads += [proxyAddress, proxyAddress] }, r.with { $0.payloads.append(identity) }],
                 [p.with { $0.payloads.append(proxyAddress) }, r]),
            Case(.unexpectedPayload, [p.with { $0.payloads.append(response()) }, r.with { $0.payloads.append(summary()) },
                                      r.with { $0.payloads.append((242, [])) }, r.with { $0.payloads.append(cookie) },
                                      c.with { $0.payloads.append(identity) }, c.with { $0.payloads.append(summary()) },
                                      c.with { $0.payloads.append(response()) }, c.with { $0.payloads.append((242, [])) }],
                 [p, r, c, echo]),
            Case(.badPayloadSize, [
                p.with { $0.payloads[0].body.append(0) },                       // TED vendor ID of 21 bytes
                p.with { $0.payloads[0].body.removeLast() },                    // and of 19
                p.with { $0.payloads[1].body.append(0) },                       // identity of 9 bytes
                p.with { $0.payloads[1].body = [1, 17, 0] },                    // identity without its port
                p.with { $0.payloads.insert((5, proxyAddress.body + [0]), at: 2) },  // proxy address of 13 bytes
                p.with { $0.payloads[2] = summary(extra: [0]) },                // IPv4 summary of 33 bytes
                p.with { $0.payloads[2] = summary(extra: Array(repeating: 0, count: 24)) },  // IPv4 summary of 56
                p.with { $0.payloads[2] = (240, Array(repeating: 0, count: 33)) },  // 33 bytes, no hash either
                r.with { $0.payloads[2] = response(extra: [0]) },               // an entry and a byte
                r.with { $0.payloads[2] = response(entries: [entry(), entry()]) },  // count 1, two entries
                r.with { $0.payloads[2] = (241, [3, 4, 1]) },                   // no room for the header
                c.with { $0.payloads[1].body = Array(repeating: 1, count: 7) }, // cookie of 7 bytes
                c.with { $0.payloads[1].body = Array(repeating: 1, count: 33) }, // and of 33
                p.with { $0.payloads.append((243, Array(repeating: 1, count: 7))) },
                p.with { $0.payloads.append((243, [])) },
            ], [p, r, p.with { $0.payloads.insert(proxyAddress, at: 2) },
                c.with { $0.payloads[1].body = Array(repeating: 1, count: 8) },
                c.with { $0.payloads[1].body = Array(repeating: 1, count: 32) },
                p.with { $0.payloads.append((243, Array(repeating: 1, count: 8))) }]),
            Case(.badIDType, [p.with { $0.payloads[1].body[0] = 4 },
                              p.with { $0.payloads.insert((5, [1] + proxyAddress.body.dropFirst()), at: 2) }],
                 [p.with { $0.payloads.insert(proxyAddress, at: 2) }]),
            Case(.badHash, [p.with { $0.payloads[2].body[0] ^= 1 }, p.with { $0.payloads[2].body[15] ^= 0x80 }], [p]),
            Case(.badTEDVersion, [p.with { $0.payloads[2] = summary(tedVersion: 2) },
                                  p.with { $0.payloads[2] = summary(tedVersion: 4) },
                                  r.with { $0.payloads[2] = response(tedVersion: 2) },
                                  r.with { $0.payloads[2] = response(tedVersion: 4) }], [p, r]),
            Case(.badIPVersion, [p.with { $0.payloads[2] = summary(ipVersion: 5) },
                                 r.with { $0.payloads[2] = response(ipVersion: 5) },
                                 r.with { $0.payloads[2] = response(ipVersion: 0) }], [p, r]),
            Case(.badSummaryFlags, [p.with { $0.payloads[2] = summary(flags: 4) },
                                    p.with { $0.payloads[2] = summary(flags: 0x80) }],
                 [p.with { $0.payloads[2] = summary(flags: 0) }]),
            Case(.badEntryCount, [r.with { $0.payloads[2] = response(count: 0, entries: []) }], [r]),
            Case(.tooManyEntries, [r.with { $0.payloads[2] = response(count: 17, entries: Array(repeating: entry(), count: 17)) }],
                 [r.with { $0.payloads[2] = response(count: 16, entries: Array(repeating: entry(), count: 16)) }]),
            Case(.portRangeInverted, [r.with { $0.payloads[2] = response(entries: [entry(responderPorts: (444, 443))]) },
                                      r.with { $0.payloads[2] = response(entries: [entry(initiatorPorts: (1, 0))]) }],
                 [r.with { $0.payloads[2] = response(entries: [entry(responderPorts: (443, 443), initiatorPorts: (1, 1))]) }]),
            Case(.portsWithAnyProtocol, [r.with { $0.payloads[2] = response(entries: [entry(proto: 0)]) },
                                         r.with { $0.payloads[2] = response(entries: [entry(proto: 0, responderPorts: (0, 65535),
                                                                                           initiatorPorts: (0, 65534))]) }],
                 [r.with { $0.payloads[2] = response(entries: [entry(proto: 0, responderPorts: (0, 65535))]) }]),
        ]
    }()

    static func outcome(_ bytes: [UInt8]) -> Result<Message, DecodeError> {
        Result { () throws(DecodeError) -> Message in try TEDCodec.decode(ByteBuffer(bytes: bytes)) }
    }

    @Test func everyReasonHasItsCase() {
        let covered = Set(Self.cases.map(\.reason))
        #expect(covered == Set(DecodeError.Reason.allCases))
        #expect(Self.cases.count == DecodeError.Reason.allCases.count)
    }

    @Test func theBaseMessagesAreValidAndSmallest() throws {
        #expect(Self.probe.bytes.count == 100 && Self.answer.bytes.count == 100)
        guard case .probe(let probe) = try TEDCodec.decode(ByteBuffer(bytes: Self.probe.bytes)) else {
            Issue.record("the base probe is not a probe")
            return
        }
        #expect(probe.summary == Packet(proto: .tcp, source: IPAddress("10.1.0.5")!, destination: IPAddress("10.2.0.7")!,
                                        sourcePort: 40000, destinationPort: 443))
        #expect(probe.proxyAddress == nil)
        #expect(Array(TEDCodec.encode(.probe(probe)).readableBytesView) == Self.probe.bytes)
    }

    @Test(arguments: cases)
    func rejectsForExactlyItsReason(_ test: Case) {
        #expect(!test.rejected.isEmpty && !test.twins.isEmpty)
        for (index, bytes) in test.rejected.enumerated() {
            let reason = Self.outcome(bytes).reason
            #expect(reason == test.reason, "rejected datagram \(index) of \(bytes.count) bytes")
        }
    }

    @Test(arguments: cases)
    func itsTwinAcrossTheBoundaryPasses(_ test: Case) {
        for (index, bytes) in test.twins.enumerated() {
            switch (test.twin, Self.outcome(bytes)) {
            case (.accepted, .success):
                break
            case (.rejected(let expected), .failure(let error)):
                #expect(error.reason == expected, "twin \(index)")
            case (_, let outcome):
                Issue.record("twin \(index) of \(bytes.count) bytes: \(outcome)")
            }
        }
    }

    @Test func summaryFlagsSayWhichPortsArePresent() throws {
        let expected: [(UInt8, UInt16?, UInt16?)] = [(0, nil, nil), (1, 40000, nil), (2, nil, 443), (3, 40000, 443)]
        for (flags, source, destination) in expected {
            let bytes = Self.probe.with { $0.payloads[2] = Self.summary(flags: flags) }.bytes
            guard case .probe(let probe) = try TEDCodec.decode(ByteBuffer(bytes: bytes)) else {
                Issue.record("flags \(flags): not a probe")
                continue
            }
            #expect(probe.summary.sourcePort == source && probe.summary.destinationPort == destination, "flags \(flags)")
        }
    }

    @Test func aForeignVendorIDSharingHalfTheHashIsSkipped() throws {
        // Only the whole 16-byte hash makes a Vendor ID the TED one; the capabilities stay the TED one's.
        let halves = [Array(Self.hash.prefix(8)) + Array(repeating: 0, count: 8),
                      Array(repeating: 0, count: 8) + Array(Self.hash.suffix(8))]
        for half in halves {
            let bytes = Self.probe.with { $0.payloads.insert((13, half + [0xff, 0xff, 0xff, 0xff]), at: 0) }.bytes
            guard case .probe(let probe) = try TEDCodec.decode(ByteBuffer(bytes: bytes)) else {
                Issue.record("not a probe")
                continue
            }
            #expect(probe.capabilities.rawValue == 3)
        }
    }
}
