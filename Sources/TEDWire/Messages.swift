import TEDModel

/// An ISAKMP cookie (8 bytes), held as a big-endian integer.
public typealias Cookie = UInt64

/// Capability flags of the TED Vendor ID (spec 4.1).
public struct Capabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Understands several entries in a response.
    public static let multipleEntries = Capabilities(rawValue: 0x1)
    /// Understands IPv6.
    public static let ipv6 = Capabilities(rawValue: 0x2)
    /// What this implementation sends.
    public static let ted: Capabilities = [.multipleEntries, .ipv6]
}

/// A peer's identity ID payload (spec 4.2): its address and the UDP port it receives TED on.
public struct Identity: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// As on the wire: 0 means 500.
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// The port to send to: `port`, or 500 when it is 0.
    public var effectivePort: UInt16 { port == 0 ? 500 : port }

    public var description: String {
        address.family == .v6 ? "[\(address)]:\(effectivePort)" : "\(address):\(effectivePort)"
    }
}

/// The initiator's optional proxy address in a probe (spec 4.2): its protected half and protocol.
public struct ProxyAddress: Hashable, Sendable {
    public let pattern: AddressPattern
    public let proto: IPProtocol

    public init(pattern: AddressPattern, proto: IPProtocol) {
        self.pattern = pattern
        self.proto = proto
    }
}

/// A TED probe, exchange type 240 (spec 2, 4).
public struct Probe: Hashable, Sendable {
    public let initiatorCookie: Cookie
    public let capabilities: Capabilities
    public let identity: Identity
    public let proxyAddress: ProxyAddress?
    /// The packet summary of P (payload 240).
    public let summary: Packet
    /// Body size of the TED Padding payload (242, spec 4.5), nil when there is none. It
    /// only makes the probe larger, so that a response may carry more entries (section 1).
    public let padding: Int?

    public init(initiatorCookie: Cookie, capabilities: Capabilities = .ted, identity: Identity,
                proxyAddress: ProxyAddress? = nil, summary: Packet, padding: Int? = nil) {
        self.initiatorCookie = initiatorCookie
        self.capabilities = capabilities
        self.identity = identity
        self.proxyAddress = proxyAddress
        self.summary = summary
        self.padding = padding
    }
}

/// A TED response, exchange type 241 (spec 2, 4).
public struct Response: Hashable, Sendable {
    public let initiatorCookie: Cookie
    public let responderCookie: Cookie
    public let capabilities: Capabilities
    public let identity: Identity
    /// 1 to 16 entries, each the responder's full proxy in the initiator's view
    /// (initiator side = Z, responder side = Y). Entry 1 matched the summary.
    public let entries: [Proxy]

    public init(initiatorCookie: Cookie, responderCookie: Cookie, capabilities: Capabilities = .ted,
                identity: Identity, entries: [Proxy]) {
        self.initiatorCookie = initiatorCookie
        self.responderCookie = responderCookie
        self.capabilities = capabilities
        self.identity = identity
        self.entries = entries
    }
}

/// Either TED message.
public enum Message: Hashable, Sendable {
    case probe(Probe)
    case response(Response)
}
