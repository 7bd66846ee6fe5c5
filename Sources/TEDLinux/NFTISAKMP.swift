import TEDModel

/// nftables expressions for ISAKMP, from `ISAKMP`'s facts.
enum NFTISAKMP {
    /// Matches TED's own messages (every `ISAKMP.Exchange`) to `port`: `@th,208,8` is the
    /// exchange type (the UDP header's 8 bytes, then `ISAKMP.exchangeTypeOffset`).
    static func tedMessages(to port: UInt16) -> String {
        messages(ISAKMP.Exchange.allCases, to: port)
    }

    /// Matches probes to `port`.
    static func probes(to port: UInt16) -> String {
        messages([.probe], to: port)
    }

    private static func messages(_ exchanges: [ISAKMP.Exchange], to port: UInt16) -> String {
        let types = exchanges.map { String($0.rawValue) }.joined(separator: ", ")
        return "udp dport \(port) @th,\((8 + ISAKMP.exchangeTypeOffset) * 8),8 " + (exchanges.count == 1 ? types : "{ \(types) }")
    }
}
