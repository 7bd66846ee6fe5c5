import NIOCore
import TEDModel

/// The TED v3 codec: messages to datagrams and back, byte-exact to spec/ted-v3-wire.md.
public enum TEDCodec {
    /// Appends the whole datagram for `message` to `buffer`.
    ///
    /// Payload order on send (section 4): Vendor ID, identity ID, [proxy address ID],
    /// summary or response. A response carries at most 16 entries, all of the first
    /// entry's IP version (entries of the other version are left out).
    public static func encode(_ message: Message, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        let initiatorCookie: UInt64, responderCookie: UInt64, exchange: UInt8, capabilities: Capabilities
        let identity: Identity
        switch message {
        case .probe(let probe):
            (initiatorCookie, responderCookie, exchange) = (probe.initiatorCookie, 0, Wire.probeExchange)
            (capabilities, identity) = (probe.capabilities, probe.identity)
        case .response(let response):
            (initiatorCookie, responderCookie, exchange) = (response.initiatorCookie, response.responderCookie, Wire.responseExchange)
            (capabilities, identity) = (response.capabilities, response.identity)
        }
        // Section 2: header; the length is filled in at the end.
        buffer.writeInteger(initiatorCookie)
        buffer.writeInteger(responderCookie)
        buffer.writeInteger(Wire.PayloadType.vendorID)
        buffer.writeInteger(Wire.version)
        buffer.writeInteger(exchange)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(0))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))

        // Section 4.1: Vendor ID.
        buffer.writePayloadHeader(next: Wire.PayloadType.identification, bodySize: 20)
        buffer.writeTEDHash()
        buffer.writeInteger(capabilities.rawValue)

        // Section 4.2: identity.
        let last: UInt8 = exchange == Wire.probeExchange ? Wire.PayloadType.summary : Wire.PayloadType.response
        var proxyAddress: ProxyAddress?
        if case .probe(let probe) = message { proxyAddress = probe.proxyAddress }
        buffer.writePayloadHeader(next: proxyAddress == nil ? last : Wire.PayloadType.identification,
                                  bodySize: 4 + identity.address.family.byteCount)
        buffer.writeInteger(identity.address.family == .v4 ? Wire.IDType.ipv4 : Wire.IDType.ipv6)
        buffer.writeInteger(UInt8(17))
        buffer.writeInteger(identity.port)
        buffer.writeAddress(identity.address)
        if let proxyAddress {
            let family = proxyAddress.pattern.family
            buffer.writePayloadHeader(next: last, bodySize: 4 + 2 * family.byteCount)
            buffer.writeInteger(family == .v4 ? Wire.IDType.ipv4Subnet : Wire.IDType.ipv6Subnet)
            buffer.writeInteger(proxyAddress.proto.number)
            buffer.writeInteger(UInt16(0))
            buffer.writeAddress(proxyAddress.pattern.address)
            buffer.writeAddress(proxyAddress.pattern.mask)
        }

        switch message {
        case .probe(let probe): writeSummary(probe.summary, into: &buffer)
        case .response(let response): writeResponse(response.entries, into: &buffer)
        }
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }

    /// The whole datagram for `message`.
    public static func encode(_ message: Message) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        encode(message, into: &buffer)
        return buffer
    }

    /// Decodes one datagram, strictly (section 3); throws the first rule it breaks.
    public static func decode(_ datagram: ByteBuffer) throws(DecodeError) -> Message {
        try MessageDecoder.decode(datagram)
    }

    /// Section 4.3.
    private static func writeSummary(_ packet: Packet, into buffer: inout ByteBuffer) {
        let family = packet.family
        buffer.writePayloadHeader(next: 0, bodySize: family == .v4 ? 32 : 56)
        buffer.writeTEDHash()
        buffer.writeInteger(Wire.tedVersion)
        buffer.writeInteger(family.rawValue)
        buffer.writeInteger(packet.proto.number)
        let flags = (packet.sourcePort == nil ? 0 : Wire.summaryFlagSourcePort)
            | (packet.destinationPort == nil ? 0 : Wire.summaryFlagDestinationPort)
        buffer.writeInteger(flags)
        buffer.writeInteger(packet.sourcePort ?? 0)
        buffer.writeInteger(packet.destinationPort ?? 0)
        buffer.writeAddress(packet.source)
        buffer.writeAddress(packet.destination)
    }

    /// Section 4.4.
    private static func writeResponse(_ entries: [Proxy], into buffer: inout ByteBuffer) {
        let family = entries.first?.family ?? .v4
        let sent = entries.lazy.filter { $0.family == family }.prefix(Wire.maxEntries)
        let count = sent.count
        buffer.writePayloadHeader(next: 0, bodySize: 4 + count * Wire.entrySize(family))
        buffer.writeInteger(Wire.tedVersion)
        buffer.writeInteger(family.rawValue)
        buffer.writeInteger(UInt8(count))
        buffer.writeInteger(UInt8(0))
        for entry in sent {
            buffer.writeInteger(entry.proto.number)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(entry.responderSide.ports.lower)
            buffer.writeInteger(entry.responderSide.ports.upper)
            buffer.writeInteger(entry.initiatorSide.ports.lower)
            buffer.writeInteger(entry.initiatorSide.ports.upper)
            buffer.writeAddress(entry.responderSide.pattern.address)
            buffer.writeAddress(entry.responderSide.pattern.mask)
            buffer.writeAddress(entry.initiatorSide.pattern.address)
            buffer.writeAddress(entry.initiatorSide.pattern.mask)
        }
    }
}
