import NIOCore
import TEDModel

/// The TED v3 codec: messages to datagrams and back, byte-exact to spec/ted-v3-wire.md.
public enum TEDCodec {
    /// Appends the whole datagram for `message` to `buffer`.
    ///
    /// Payload order on send (section 4): Vendor ID, identity ID, [proxy address ID],
    /// summary or response, [cookie], [padding]; a challenge is Vendor ID, cookie. Padding is clamped so the probe stays within 4096 bytes. A response carries at most 16 entries, all of the first
    /// entry's IP version (entries of the other version are left out).
    public static func encode(_ message: Message, into buffer: inout ByteBuffer) {
        switch message {
        case .probe(let probe):
            let proxyFamily = probe.proxyAddress?.pattern.family
            let unpadded = Wire.probeSize(identity: probe.identity.address.family, proxy: proxyFamily,
                                          summary: probe.summary.family, padding: nil, cookie: probe.cookie?.bytes.count)
            let padding = probe.padding.map { min(max($0, 0), Wire.maxDatagram - unpadded - 4) }
            let size = unpadded + (padding.map { 4 + $0 } ?? 0)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                var w = RawWriter(raw)
                writeHeader(&w, initiatorCookie: probe.initiatorCookie, responderCookie: 0,
                            exchange: Wire.probeExchange, capabilities: probe.capabilities, length: size)
                writeIdentity(&w, probe.identity, next: proxyFamily == nil ? Wire.PayloadType.summary : Wire.PayloadType.identification)
                if let proxy = probe.proxyAddress {
                    let family = proxy.pattern.family
                    w.payloadHeader(next: Wire.PayloadType.summary, bodySize: 4 + 2 * family.byteCount)
                    w.write(family == .v4 ? Wire.IDType.ipv4Subnet : Wire.IDType.ipv6Subnet)
                    w.write(proxy.proto.number)
                    w.write(UInt16(0))
                    w.write(proxy.pattern.address)
                    w.write(proxy.pattern.mask)
                }
                let afterCookie = padding == nil ? 0 : Wire.PayloadType.padding
                writeSummary(&w, probe.summary, next: probe.cookie == nil ? afterCookie : Wire.PayloadType.cookie)
                if let cookie = probe.cookie {
                    w.payloadHeader(next: afterCookie, bodySize: cookie.bytes.count)
                    w.write(bytes: cookie.bytes)
                }
                if let padding {
                    w.payloadHeader(next: 0, bodySize: padding)
                    w.zeros(padding)
                }
                return w.offset
            }
        case .response(let response):
            let family = response.entries.first?.family ?? .v4
            var count = 0
            for entry in response.entries where entry.family == family && count < Wire.maxEntries { count += 1 }
            let size = Wire.responseSize(identity: response.identity.address.family, family: family, count: count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                var w = RawWriter(raw)
                writeHeader(&w, initiatorCookie: response.initiatorCookie, responderCookie: response.responderCookie,
                            exchange: Wire.responseExchange, capabilities: response.capabilities, length: size)
                writeIdentity(&w, response.identity, next: Wire.PayloadType.response)
                writeResponse(&w, response.entries, family: family, count: count)
                return w.offset
            }
        case .challenge(let challenge):
            let size = Wire.challengeSize(cookie: challenge.cookie.bytes.count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                var w = RawWriter(raw)
                writeHeader(&w, initiatorCookie: challenge.initiatorCookie, responderCookie: 0,
                            exchange: Wire.challengeExchange, capabilities: challenge.capabilities, length: size,
                            next: Wire.PayloadType.cookie)
                w.payloadHeader(next: 0, bodySize: challenge.cookie.bytes.count)
                w.write(bytes: challenge.cookie.bytes)
                return w.offset
            }
        }
    }

    /// Section 2 header, then the section 4.1 Vendor ID.
    private static func writeHeader(_ w: inout RawWriter, initiatorCookie: UInt64, responderCookie: UInt64,
                                    exchange: UInt8, capabilities: Capabilities, length: Int,
                                    next: UInt8 = Wire.PayloadType.identification) {
        w.write(initiatorCookie)
        w.write(responderCookie)
        w.write(Wire.PayloadType.vendorID)
        w.write(Wire.version)
        w.write(exchange)
        w.write(UInt8(0))
        w.write(UInt32(0))
        w.write(UInt32(truncatingIfNeeded: length))
        w.payloadHeader(next: next, bodySize: 20)
        w.tedHash()
        w.write(capabilities.rawValue)
    }

    /// Section 4.2: the identity ID payload.
    private static func writeIdentity(_ w: inout RawWriter, _ identity: Identity, next: UInt8) {
        w.payloadHeader(next: next, bodySize: 4 + identity.address.family.byteCount)
        w.write(identity.address.family == .v4 ? Wire.IDType.ipv4 : Wire.IDType.ipv6)
        w.write(UInt8(17))
        w.write(identity.port)
        w.write(identity.address)
    }

    /// A response is never larger than this many times the probe it answers (spec section 1).
    public static let amplificationBound = 3

    /// How many entries of `family` a response from an `identity`-family responder may
    /// carry in answer to a probe of `probeSize` bytes: at least 1 (entry 1 always fits an
    /// unpadded probe), at most 16.
    public static func entriesWithinAmplificationBound(probeSize: Int, identity: IPAddress.Family,
                                                       family: IPAddress.Family) -> Int {
        let room = amplificationBound * probeSize - Wire.responseSize(identity: identity, family: family, count: 0)
        return min(max(room / Wire.entrySize(family), 1), Wire.maxEntries)
    }

    /// The Padding body a probe needs so that a response of `entries` entries stays within
    /// the bound, whatever the responder's identity family; nil when none is needed.
    public static func paddingForEntries(_ entries: Int, identity: IPAddress.Family, proxy: IPAddress.Family?,
                                         summary: IPAddress.Family) -> Int? {
        let unpadded = Wire.probeSize(identity: identity, proxy: proxy, summary: summary, padding: nil)
        let wanted = Wire.responseSize(identity: .v6, family: summary, count: min(max(entries, 1), Wire.maxEntries))
        let needed = (wanted + amplificationBound - 1) / amplificationBound
        return needed > unpadded ? max(needed - unpadded - 4, 0) : nil
    }

    /// The whole datagram for `message`.
    public static func encode(_ message: Message) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        encode(message, into: &buffer)
        return buffer
    }

    /// Size of the challenge `encode` writes for a cookie of `cookieSize` bytes.
    public static func challengeSize(cookieSize: Int) -> Int { Wire.challengeSize(cookie: cookieSize) }

    /// Decodes one datagram, strictly (section 3); throws the first rule it breaks.
    public static func decode(_ datagram: ByteBuffer) throws(DecodeError) -> Message {
        try MessageDecoder.decode(datagram)
    }

    /// Section 4.3.
    private static func writeSummary(_ w: inout RawWriter, _ packet: Packet, next: UInt8) {
        w.payloadHeader(next: next, bodySize: packet.family == .v4 ? 32 : 56)
        w.tedHash()
        w.write(Wire.tedVersion)
        w.write(packet.family.rawValue)
        w.write(packet.proto.number)
        let flags = (packet.sourcePort == nil ? 0 : Wire.summaryFlagSourcePort)
            | (packet.destinationPort == nil ? 0 : Wire.summaryFlagDestinationPort)
        w.write(flags)
        w.write(packet.sourcePort ?? 0)
        w.write(packet.destinationPort ?? 0)
        w.write(packet.source)
        w.write(packet.destination)
    }

    /// Section 4.4.
    private static func writeResponse(_ w: inout RawWriter, _ entries: [Proxy], family: IPAddress.Family, count: Int) {
        w.payloadHeader(next: 0, bodySize: 4 + count * Wire.entrySize(family))
        w.write(Wire.tedVersion)
        w.write(family.rawValue)
        w.write(UInt8(count))
        w.write(UInt8(0))
        var written = 0
        for entry in entries where entry.family == family {
            if written == count { break }
            written += 1
            w.write(entry.proto.number)
            w.write(UInt8(0))
            w.write(UInt16(0))
            w.write(entry.responderSide.ports.lower)
            w.write(entry.responderSide.ports.upper)
            w.write(entry.initiatorSide.ports.lower)
            w.write(entry.initiatorSide.ports.upper)
            w.write(entry.responderSide.pattern.address)
            w.write(entry.responderSide.pattern.mask)
            w.write(entry.initiatorSide.pattern.address)
            w.write(entry.initiatorSide.pattern.mask)
        }
    }
}
