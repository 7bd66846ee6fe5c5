/// The ISAKMP facts every layer needs, stated once: the port, the exchange types TED uses
/// and where the exchange type sits in the header (the codec, the driver's dispatch and the
/// nftables rules that let TED's messages by all read them here).
public enum ISAKMP {
    /// UDP port 500: where probes go, and a zero identity port means.
    public static let port: UInt16 = 500
    /// Offset of the exchange type in the ISAKMP header (two 8-byte cookies, next payload,
    /// version, then the exchange type).
    public static let exchangeTypeOffset = 18

    /// TED's exchange types (WIRE-FORMAT.md).
    public enum Exchange: UInt8, CaseIterable, Sendable {
        case probe = 240
        case response = 241
        /// A return-routability challenge (issue 21).
        case challenge = 242
    }
}
