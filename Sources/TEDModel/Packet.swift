/// The summary of a packet P that policy says must be protected (patent block 202).
///
/// For ICMP and ICMPv6 the source port is the type and the destination port the
/// code, as in Linux XFRM selectors. An absent port is unknown and matches any range.
public struct Packet: Hashable, Sendable {
    public let proto: IPProtocol
    public let source: IPAddress
    public let destination: IPAddress
    public let sourcePort: UInt16?
    public let destinationPort: UInt16?

    /// Creates a packet summary; nil when the two addresses are of different families.
    public init?(proto: IPProtocol, source: IPAddress, destination: IPAddress,
                 sourcePort: UInt16? = nil, destinationPort: UInt16? = nil) {
        guard source.family == destination.family else { return nil }
        self.proto = proto
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    public var family: IPAddress.Family { source.family }
}

extension Packet: CustomStringConvertible {
    /// `tcp 198.18.1.10:40000 198.18.2.20:443`, IPv6 in brackets: the `--packet` syntax.
    public var description: String {
        func endpoint(_ address: IPAddress, _ port: UInt16?) -> String {
            let host = address.family == .v6 ? "[\(address)]" : "\(address)"
            return port.map { "\(host):\($0)" } ?? host
        }
        return "\(proto) \(endpoint(source, sourcePort)) \(endpoint(destination, destinationPort))"
    }
}

extension Packet {
    /// Parses `<protocol> <src>[:<port>] <dst>[:<port>]` (IPv6 in brackets when a port follows).
    public init(parsing text: String) throws(SyntaxError) {
        var tokens = Tokenizer(text)
        let protoToken = try tokens.next(expecting: "a protocol")
        guard let proto = IPProtocol(name: protoToken.text) else {
            throw SyntaxError(column: protoToken.column, message: "unknown protocol '\(protoToken.text)'")
        }
        let (source, sourcePort) = try Self.endpoint(tokens.next(expecting: "a source address"))
        let (destination, destinationPort) = try Self.endpoint(tokens.next(expecting: "a destination address"))
        if let extra = tokens.next() {
            throw SyntaxError(column: extra.column, message: "unexpected '\(extra.text)' after the destination")
        }
        if (sourcePort != nil || destinationPort != nil) && !proto.allowsPortSelectors {
            throw SyntaxError(column: protoToken.column, message: "protocol \(proto) has no ports")
        }
        guard let packet = Packet(proto: proto, source: source.address, destination: destination.address,
                                  sourcePort: sourcePort, destinationPort: destinationPort) else {
            throw SyntaxError(column: destination.column, message: "source and destination are of different IP versions")
        }
        self = packet
    }

    private static func endpoint(_ token: Token) throws(SyntaxError) -> ((address: IPAddress, column: Int), UInt16?) {
        var host = Substring(token.text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw SyntaxError(column: token.column, message: "missing ']' in '\(token.text)'")
            }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw SyntaxError(column: token.column, message: "expected ':<port>' after ']' in '\(token.text)'")
                }
                portText = rest.dropFirst()
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let address = IPAddress(host) else {
            throw SyntaxError(column: token.column, message: "invalid address '\(host)'")
        }
        var port: UInt16?
        if let portText {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt16(portText) else {
                throw SyntaxError(column: token.column, message: "invalid port '\(portText)' (0-65535)")
            }
            port = value
        }
        return ((address, token.column), port)
    }
}
