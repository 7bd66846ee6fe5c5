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
    public var effectivePort: UInt16 { port == 0 ? ISAKMP.port : port }

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
    /// The Cookie payload (243): a challenge's cookie, echoed; nil when there is none.
    public let cookie: ReturnCookie?

    public init(initiatorCookie: Cookie, capabilities: Capabilities = .ted, identity: Identity,
                proxyAddress: ProxyAddress? = nil, summary: Packet, padding: Int? = nil, cookie: ReturnCookie? = nil) {
        self.initiatorCookie = initiatorCookie
        self.capabilities = capabilities
        self.identity = identity
        self.proxyAddress = proxyAddress
        self.summary = summary
        self.padding = padding
        self.cookie = cookie
    }

    /// The same probe carrying `cookie` (the answer to a challenge), or none.
    public func echoing(_ cookie: ReturnCookie?) -> Probe {
        Probe(initiatorCookie: initiatorCookie, capabilities: capabilities, identity: identity,
              proxyAddress: proxyAddress, summary: summary, padding: padding, cookie: cookie)
    }
}

/// A TED response, exchange type 241 (spec 2, 4).
public struct Response: Hashable, Sendable {
    /// The most entries a response carries (spec 4.4): what a responder may offer and an
    /// initiator may ask for.
    public static let maximumEntries = 16

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

/// The body of a Cookie payload (type 243): 8 to 32 opaque bytes that only the responder
/// that made them can read (WIRE-FORMAT.md, "Cookie").
public struct ReturnCookie: Hashable, Sendable, CustomStringConvertible {
    public static let sizes = 8...32
    public let bytes: [UInt8]

    /// Nil unless `bytes` has 8 to 32 bytes.
    public init?(_ bytes: [UInt8]) {
        guard Self.sizes.contains(bytes.count) else { return nil }
        self.bytes = bytes
    }

    public var description: String { bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xf, radix: 16) }.joined() }
}

/// A return-routability challenge, exchange type 242: a responder that will not answer a
/// probe from its ordinary budgets asks the initiator to send it again with `cookie`.
public struct Challenge: Hashable, Sendable {
    /// The probe's initiator cookie, echoed.
    public let initiatorCookie: Cookie
    public let capabilities: Capabilities
    public let cookie: ReturnCookie

    public init(initiatorCookie: Cookie, capabilities: Capabilities = .ted, cookie: ReturnCookie) {
        self.initiatorCookie = initiatorCookie
        self.capabilities = capabilities
        self.cookie = cookie
    }
}

/// A TED message.
public enum Message: Hashable, Sendable {
    case probe(Probe)
    case response(Response)
    case challenge(Challenge)
}
