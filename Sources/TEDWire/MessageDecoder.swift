import NIOCore
import TEDModel

/// Strict decoding of one datagram (spec sections 2-4): every byte is accounted for.
struct MessageDecoder {
    private var initiatorCookie: UInt64 = 0
    private var responderCookie: UInt64 = 0
    private enum Kind { case probe, response, challenge }
    private var kind = Kind.probe
    private var isProbe: Bool { kind == .probe }
    private var capabilities: Capabilities?
    private var identity: Identity?
    private var proxyAddress: ProxyAddress?
    private var idCount = 0
    private var summary: Packet?
    private var entries: [Proxy]?
    private var padding: Int?
    private var cookie: ReturnCookie?

    static func decode(_ datagram: ByteBuffer) throws(DecodeError) -> Message {
        let result = datagram.withUnsafeReadableBytes { bytes -> Result<Message, DecodeError> in
            var decoder = MessageDecoder()
            var reader = WireReader(bytes)
            return Result { () throws(DecodeError) in try decoder.decode(&reader) }
        }
        return try result.get()
    }

    private mutating func decode(_ buffer: inout WireReader) throws(DecodeError) -> Message {
        let size = buffer.readableBytes
        guard size >= Wire.headerSize else { throw DecodeError(.tooShort, "\(size) bytes") }
        guard size <= Wire.maxDatagram else { throw DecodeError(.tooLong, "\(size) bytes") }
        // Section 2: the 28-byte header. Every read below is within the checked size.
        guard let icookie = buffer.readInteger(as: UInt64.self), let rcookie = buffer.readInteger(as: UInt64.self),
              let firstPayload = buffer.readInteger(as: UInt8.self), let version = buffer.readInteger(as: UInt8.self),
              let exchange = buffer.readInteger(as: UInt8.self), let flags = buffer.readInteger(as: UInt8.self),
              let messageID = buffer.readInteger(as: UInt32.self), let length = buffer.readInteger(as: UInt32.self)
        else { throw DecodeError(.tooShort) }
        guard Int(exactly: length) == size else { throw DecodeError(.lengthMismatch, "header says \(length), datagram has \(size)") }
        guard version == Wire.version else { throw DecodeError(.badVersion, "0x\(String(version, radix: 16))") }
        switch exchange {
        case Wire.probeExchange: kind = .probe
        case Wire.responseExchange: kind = .response
        case Wire.challengeExchange: kind = .challenge
        default: throw DecodeError(.badExchangeType, "\(exchange)")
        }
        guard flags == 0 else { throw DecodeError(.nonZeroFlags) }
        guard messageID == 0 else { throw DecodeError(.nonZeroMessageID) }
        guard icookie != 0 else { throw DecodeError(.zeroInitiatorCookie) }
        // A challenge keeps no state, so it has no responder cookie (section "Challenge").
        if kind != .response, rcookie != 0 { throw DecodeError(.nonZeroResponderCookie) }
        if kind == .response, rcookie == 0 { throw DecodeError(.zeroResponderCookie) }
        initiatorCookie = icookie
        responderCookie = rcookie

        // Section 3: the payload chain.
        var next = firstPayload
        var count = 0
        while next != 0 {
            count += 1
            guard count <= Wire.maxPayloads else { throw DecodeError(.tooManyPayloads) }
            guard let following = buffer.readInteger(as: UInt8.self), buffer.readInteger(as: UInt8.self) != nil,
                  let payloadLength = buffer.readInteger(as: UInt16.self) else {
                throw DecodeError(.truncatedPayload, "payload \(count) header")
            }
            guard payloadLength >= 4 else { throw DecodeError(.payloadTooShort, "payload \(count): length \(payloadLength)") }
            guard var body = buffer.readSlice(length: Int(payloadLength) - 4) else {
                throw DecodeError(.truncatedPayload, "payload \(count): length \(payloadLength)")
            }
            try payload(type: next, body: &body)
            next = following
        }
        guard buffer.readableBytes == 0 else { throw DecodeError(.trailingBytes, "\(buffer.readableBytes) bytes") }
        return try message()
    }

    private mutating func payload(type: UInt8, body: inout WireReader) throws(DecodeError) {
        switch type {
        case Wire.PayloadType.vendorID: try vendorID(&body)
        case Wire.PayloadType.identification:
            guard kind != .challenge else { throw DecodeError(.unexpectedPayload, "ID payload in a challenge") }
            try identification(&body)
        case Wire.PayloadType.summary:
            guard isProbe else { throw DecodeError(.unexpectedPayload, "packet summary in a response") }
            guard summary == nil else { throw DecodeError(.duplicateSummary) }
            summary = try Self.summary(&body)
        case Wire.PayloadType.response:
            guard kind == .response else { throw DecodeError(.unexpectedPayload, "TED response in a \(isProbe ? "probe" : "challenge")") }
            guard entries == nil else { throw DecodeError(.duplicateResponse) }
            entries = try Self.response(&body)
        case Wire.PayloadType.padding:
            guard isProbe else { throw DecodeError(.unexpectedPayload, "TED padding outside a probe") }
            guard padding == nil else { throw DecodeError(.duplicatePadding) }
            padding = body.readableBytes  // Its bytes are ignored on receipt (section 4.5).
        case Wire.PayloadType.cookie:
            guard kind != .response else { throw DecodeError(.unexpectedPayload, "TED cookie in a response") }
            guard cookie == nil else { throw DecodeError(.duplicateCookie) }
            guard let bytes = body.readBytes(length: body.readableBytes), let value = ReturnCookie(bytes) else {
                throw DecodeError(.badPayloadSize, "TED cookie of \(body.readableBytes) bytes")
            }
            cookie = value
        default:
            break  // Unknown payload types are skipped (section 3).
        }
    }

    /// Section 4.1: the TED Vendor ID; a foreign one is skipped.
    private mutating func vendorID(_ body: inout WireReader) throws(DecodeError) {
        guard body.readableBytes >= 16, body.hasTEDHash(at: body.readerIndex) else { return }
        guard body.readableBytes == 20 else { throw DecodeError(.badPayloadSize, "TED vendor ID of \(body.readableBytes) bytes") }
        guard capabilities == nil else { throw DecodeError(.duplicateVendorID) }
        body.moveReaderIndex(forwardBy: 16)
        capabilities = body.readInteger(as: UInt32.self).map { Capabilities(rawValue: $0) }
    }

    /// Section 4.2: the identity, then (probes only) the proxy address.
    private mutating func identification(_ body: inout WireReader) throws(DecodeError) {
        idCount += 1
        guard idCount <= (isProbe ? 2 : 1) else { throw DecodeError(.tooManyIDs) }
        guard let idType = body.readInteger(as: UInt8.self), let proto = body.readInteger(as: UInt8.self),
              let port = body.readInteger(as: UInt16.self) else {
            throw DecodeError(.badPayloadSize, "ID payload of \(body.readableBytes) bytes")
        }
        if idCount == 1 {
            let family: IPAddress.Family
            switch idType {
            case Wire.IDType.ipv4: family = .v4
            case Wire.IDType.ipv6: family = .v6
            default: throw DecodeError(.badIDType, "identity of ID type \(idType)")
            }
            guard body.readableBytes == family.byteCount, let address = body.readAddress(family) else {
                throw DecodeError(.badPayloadSize, "identity ID payload")
            }
            identity = Identity(address: address, port: port)
        } else {
            let family: IPAddress.Family
            switch idType {
            case Wire.IDType.ipv4Subnet: family = .v4
            case Wire.IDType.ipv6Subnet: family = .v6
            default: throw DecodeError(.badIDType, "proxy address of ID type \(idType)")
            }
            guard body.readableBytes == 2 * family.byteCount, let address = body.readAddress(family),
                  let mask = body.readAddress(family), let pattern = AddressPattern(address: address, mask: mask) else {
                throw DecodeError(.badPayloadSize, "proxy address ID payload")
            }
            proxyAddress = ProxyAddress(pattern: pattern, proto: IPProtocol(proto))
        }
    }

    /// Section 4.3: the packet summary.
    private static func summary(_ body: inout WireReader) throws(DecodeError) -> Packet {
        guard body.readableBytes == 32 || body.readableBytes == 56 else {
            throw DecodeError(.badPayloadSize, "packet summary of \(body.readableBytes) bytes")
        }
        let size = body.readableBytes
        guard body.readTEDHash() == true else { throw DecodeError(.badHash) }
        guard let tedVersion = body.readInteger(as: UInt8.self), let ipVersion = body.readInteger(as: UInt8.self),
              let proto = body.readInteger(as: UInt8.self), let flags = body.readInteger(as: UInt8.self),
              let sourcePort = body.readInteger(as: UInt16.self), let destinationPort = body.readInteger(as: UInt16.self)
        else { throw DecodeError(.badPayloadSize) }
        guard tedVersion == Wire.tedVersion else { throw DecodeError(.badTEDVersion, "\(tedVersion)") }
        guard let family = IPAddress.Family(rawValue: ipVersion) else { throw DecodeError(.badIPVersion, "\(ipVersion)") }
        guard size == (family == .v4 ? 32 : 56) else { throw DecodeError(.badPayloadSize, "IPv\(ipVersion) summary of \(size) bytes") }
        guard flags & ~(Wire.summaryFlagSourcePort | Wire.summaryFlagDestinationPort) == 0 else {
            throw DecodeError(.badSummaryFlags, "0x\(String(flags, radix: 16))")
        }
        guard let source = body.readAddress(family), let destination = body.readAddress(family),
              let packet = Packet(proto: IPProtocol(proto), source: source, destination: destination,
                                  sourcePort: flags & Wire.summaryFlagSourcePort != 0 ? sourcePort : nil,
                                  destinationPort: flags & Wire.summaryFlagDestinationPort != 0 ? destinationPort : nil)
        else { throw DecodeError(.badPayloadSize) }
        return packet
    }

    /// Section 4.4: the TED response and its entries.
    private static func response(_ body: inout WireReader) throws(DecodeError) -> [Proxy] {
        guard let tedVersion = body.readInteger(as: UInt8.self), let ipVersion = body.readInteger(as: UInt8.self),
              let count = body.readInteger(as: UInt8.self), body.readInteger(as: UInt8.self) != nil else {
            throw DecodeError(.badPayloadSize, "TED response of \(body.readableBytes) bytes")
        }
        guard tedVersion == Wire.tedVersion else { throw DecodeError(.badTEDVersion, "\(tedVersion)") }
        guard let family = IPAddress.Family(rawValue: ipVersion) else { throw DecodeError(.badIPVersion, "\(ipVersion)") }
        guard count >= 1 else { throw DecodeError(.badEntryCount, "0") }
        guard count <= Wire.maxEntries else { throw DecodeError(.tooManyEntries, "\(count)") }
        guard body.readableBytes == Int(count) * Wire.entrySize(family) else {
            throw DecodeError(.badPayloadSize, "\(count) entries in \(body.readableBytes) bytes")
        }
        var entries: [Proxy] = []
        entries.reserveCapacity(Int(count))
        for index in 1...Int(count) {
            guard let proto = body.readInteger(as: UInt8.self), body.readInteger(as: UInt8.self) != nil,
                  body.readInteger(as: UInt16.self) != nil,
                  let responderLow = body.readInteger(as: UInt16.self), let responderHigh = body.readInteger(as: UInt16.self),
                  let initiatorLow = body.readInteger(as: UInt16.self), let initiatorHigh = body.readInteger(as: UInt16.self),
                  let responderAddress = body.readAddress(family), let responderMask = body.readAddress(family),
                  let initiatorAddress = body.readAddress(family), let initiatorMask = body.readAddress(family),
                  let responderPattern = AddressPattern(address: responderAddress, mask: responderMask),
                  let initiatorPattern = AddressPattern(address: initiatorAddress, mask: initiatorMask)
            else { throw DecodeError(.badPayloadSize, "entry \(index)") }
            guard let responderPorts = PortRange(responderLow, responderHigh),
                  let initiatorPorts = PortRange(initiatorLow, initiatorHigh) else {
                throw DecodeError(.portRangeInverted, "entry \(index)")
            }
            if proto == 0, !responderPorts.isAll || !initiatorPorts.isAll {
                throw DecodeError(.portsWithAnyProtocol, "entry \(index)")
            }
            guard let proxy = Proxy(proto: IPProtocol(proto),
                                    initiatorSide: HalfProxy(pattern: initiatorPattern, ports: initiatorPorts),
                                    responderSide: HalfProxy(pattern: responderPattern, ports: responderPorts))
            else { throw DecodeError(.badPayloadSize, "entry \(index)") }
            entries.append(proxy)
        }
        return entries
    }

    /// Section 4: every required payload present.
    private func message() throws(DecodeError) -> Message {
        guard let capabilities else { throw DecodeError(.missingVendorID) }
        if kind == .challenge {
            guard let cookie else { throw DecodeError(.missingCookie) }
            return .challenge(Challenge(initiatorCookie: initiatorCookie, capabilities: capabilities, cookie: cookie))
        }
        guard let identity else { throw DecodeError(.missingIdentity) }
        if isProbe {
            guard let summary else { throw DecodeError(.missingSummary) }
            return .probe(Probe(initiatorCookie: initiatorCookie, capabilities: capabilities, identity: identity,
                                proxyAddress: proxyAddress, summary: summary, padding: padding, cookie: cookie))
        }
        guard let entries else { throw DecodeError(.missingResponse) }
        return .response(Response(initiatorCookie: initiatorCookie, responderCookie: responderCookie,
                                  capabilities: capabilities, identity: identity, entries: entries))
    }
}
