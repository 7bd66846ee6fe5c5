import TEDModel

/// nftables expressions for ISAKMP, from `ISAKMP`'s facts.
enum NFTISAKMP {
    /// Matches TED's own messages (every `ISAKMP.Exchange`) to `port`: `@th,208,8` is the
    /// exchange type (the UDP header's 8 bytes, then `ISAKMP.exchangeTypeOffset`).
    static func tedMessages(to port: UInt16) -> String {
        let types = ISAKMP.Exchange.allCases.map { String($0.rawValue) }.joined(separator: ", ")
        return "udp dport \(port) @th,\((8 + ISAKMP.exchangeTypeOffset) * 8),8 { \(types) }"
    }
}
