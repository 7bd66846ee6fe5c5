import TEDModel

/// Wire constants of spec sections 2 and 4.
enum Wire {
    static let headerSize = 28
    static let maxDatagram = 4096
    static let maxPayloads = 16
    static let maxEntries = Response.maximumEntries
    static let version: UInt8 = 0x10
    static let probeExchange = ISAKMP.Exchange.probe.rawValue
    static let responseExchange = ISAKMP.Exchange.response.rawValue
    /// A return-routability challenge (WIRE-FORMAT.md, "Challenge").
    static let challengeExchange = ISAKMP.Exchange.challenge.rawValue
    static let tedVersion: UInt8 = 3

    enum PayloadType {
        static let vendorID: UInt8 = 13
        static let identification: UInt8 = 5
        static let summary: UInt8 = 240
        static let response: UInt8 = 241
        static let padding: UInt8 = 242
        static let cookie: UInt8 = 243
    }

    enum IDType {
        static let ipv4: UInt8 = 1
        static let ipv4Subnet: UInt8 = 4
        static let ipv6: UInt8 = 5
        static let ipv6Subnet: UInt8 = 6
    }

    /// MD5("Cisco TED Probe version #3") (spec 4.1), as two big-endian halves.
    static let hashHigh: UInt64 = 0x8320_355d_3c37_c2d9
    static let hashLow: UInt64 = 0x5bad_ba15_e73c_79f5

    static let summaryFlagSourcePort: UInt8 = 0x1
    static let summaryFlagDestinationPort: UInt8 = 0x2

    /// Body size of one response entry (spec 4.4).
    static func entrySize(_ family: IPAddress.Family) -> Int { family == .v4 ? 28 : 76 }

    /// Size of a probe with these parts (padding: the Padding payload's body, cookie: the
    /// Cookie payload's body; nil for none).
    static func probeSize(identity: IPAddress.Family, proxy: IPAddress.Family?, summary: IPAddress.Family,
                          padding: Int?, cookie: Int? = nil) -> Int {
        headerSize + 24 + 8 + identity.byteCount + (proxy.map { 8 + 2 * $0.byteCount } ?? 0)
            + (summary == .v4 ? 36 : 60) + (padding.map { 4 + $0 } ?? 0) + (cookie.map { 4 + $0 } ?? 0)
    }

    /// Size of a challenge whose cookie has `cookie` bytes.
    static func challengeSize(cookie: Int) -> Int { headerSize + 24 + 4 + cookie }

    /// Size of a response with `count` entries of `family`.
    static func responseSize(identity: IPAddress.Family, family: IPAddress.Family, count: Int) -> Int {
        headerSize + 24 + 8 + identity.byteCount + 8 + count * entrySize(family)
    }
}
