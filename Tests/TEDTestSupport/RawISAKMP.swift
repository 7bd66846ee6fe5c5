/// An ISAKMP datagram as parts, so that a test can break exactly one of them: the one
/// raw builder of the test targets (the codec's own writer is what they test).
public struct RawISAKMP: Sendable {
    public var initiatorCookie: UInt64
    public var responderCookie: UInt64
    public var version: UInt8
    public var exchange: UInt8
    public var flags: UInt8
    public var messageID: UInt32
    public var payloads: [(type: UInt8, body: [UInt8])]
    /// Added to the true size in the header's length field.
    public var lengthSkew: Int
    /// Bytes after the last payload.
    public var trailing: [UInt8]
    /// Replaces the length field of payload `index`.
    public var payloadLength: (index: Int, value: UInt16)?
    /// Makes the last payload name a next payload that never comes.
    public var danglingNext: Bool

    public init(initiatorCookie: UInt64 = 0x0102_0304_0506_0708, responderCookie: UInt64 = 0, version: UInt8 = 0x10,
                exchange: UInt8 = 240, flags: UInt8 = 0, messageID: UInt32 = 0, payloads: [(type: UInt8, body: [UInt8])] = [],
                lengthSkew: Int = 0, trailing: [UInt8] = [], payloadLength: (index: Int, value: UInt16)? = nil,
                danglingNext: Bool = false) {
        self.initiatorCookie = initiatorCookie
        self.responderCookie = responderCookie
        self.version = version
        self.exchange = exchange
        self.flags = flags
        self.messageID = messageID
        self.payloads = payloads
        self.lengthSkew = lengthSkew
        self.trailing = trailing
        self.payloadLength = payloadLength
        self.danglingNext = danglingNext
    }

    public var bytes: [UInt8] {
        var chain: [UInt8] = []
        for (index, payload) in payloads.enumerated() {
            var next = index + 1 < payloads.count ? payloads[index + 1].type : 0
            if danglingNext, index == payloads.count - 1 { next = 99 }
            var length = UInt16(truncatingIfNeeded: payload.body.count + 4)
            if let override = payloadLength, override.index == index { length = override.value }
            chain += [next, 0] + Self.be(length) + payload.body
        }
        chain += trailing
        let header = Self.be(initiatorCookie) + Self.be(responderCookie)
            + [payloads.first?.type ?? 0, version, exchange, flags] + Self.be(messageID)
        return header + Self.be(UInt32(truncatingIfNeeded: 28 + chain.count + lengthSkew)) + chain
    }

    public func with(_ change: (inout RawISAKMP) -> Void) -> RawISAKMP {
        var copy = self
        change(&copy)
        return copy
    }

    /// Big-endian bytes of an integer.
    public static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        stride(from: T.bitWidth - 8, through: 0, by: -8).map { UInt8(truncatingIfNeeded: value >> $0) }
    }

    /// MD5("Cisco TED Probe version #3") and the payloads every TED message starts with.
    public static let tedHash: [UInt8] = [0x83, 0x20, 0x35, 0x5d, 0x3c, 0x37, 0xc2, 0xd9,
                                          0x5b, 0xad, 0xba, 0x15, 0xe7, 0x3c, 0x79, 0xf5]
    public static let vendorID: (type: UInt8, body: [UInt8]) = (13, tedHash + [0, 0, 0, 3])
    /// Identity 198.51.100.1, port 500.
    public static let identity: (type: UInt8, body: [UInt8]) = (5, [1, 17, 0x01, 0xf4, 198, 51, 100, 1])
    /// Proxy address 10.1.0.0/16 (tcp).
    public static let proxyAddress: (type: UInt8, body: [UInt8]) = (5, [4, 6, 0, 0, 10, 1, 0, 0, 255, 255, 0, 0])
}
