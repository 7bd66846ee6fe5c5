/// Parser for crypto-ACL lines in Cisco IOS extended-ACL syntax.
///
///     permit|deny <protocol> <source> [<port-op>] <destination> [<port-op>]
///     permit|deny icmp|icmp6 <source> <destination> [<type> [<code>]]
///     remark <text>
///
/// Addresses: `any`, `host A`, `A WILDCARD` (inverted mask, may be non-contiguous),
/// `A/len`, `A/MASK`. Port operators: `eq P`, `range P Q`, `lt P`, `gt P`; `neq`
/// cannot be one range and is refused. Ports by number or common name.
public enum ACLParser {
    /// Parses one policy line; nil for a `remark` or an empty line.
    public static func parseLine(_ line: String) throws(SyntaxError) -> PolicyEntry? {
        var tokens = Tokenizer(line)
        guard let first = tokens.next() else { return nil }
        let action: PolicyEntry.Action
        switch first.text.lowercased() {
        case "remark": return nil
        case "permit": action = .permit
        case "deny": action = .deny
        default:
            throw SyntaxError(column: first.column, message: "expected 'permit', 'deny' or 'remark', found '\(first.text)'")
        }
        return try parseBody(&tokens, action: action)
    }

    /// Parses an entry without its action (as `ted intersect` takes it), as a permit entry.
    public static func parseSelector(_ text: String) throws(SyntaxError) -> PolicyEntry {
        var tokens = Tokenizer(text)
        if let first = tokens.peek, ["permit", "deny"].contains(first.text.lowercased()) {
            throw SyntaxError(column: first.column, message: "write the entry without '\(first.text)'")
        }
        return try parseBody(&tokens, action: .permit)
    }

    private static func parseBody(_ tokens: inout Tokenizer, action: PolicyEntry.Action) throws(SyntaxError) -> PolicyEntry {
        let protoToken = try tokens.next(expecting: "a protocol")
        guard let proto = IPProtocol(name: protoToken.text) else {
            throw SyntaxError(column: protoToken.column, message: "unknown protocol '\(protoToken.text)'")
        }
        let source = try parseAddress(&tokens, what: "a source")
        var sourcePorts = PortRange.all
        if let op = tokens.peek, isPortOperator(op.text) {
            sourcePorts = try parsePorts(&tokens, proto: proto)
        }
        let destination = try parseAddress(&tokens, what: "a destination")
        var destinationPorts = PortRange.all
        if let op = tokens.peek, isPortOperator(op.text) {
            destinationPorts = try parsePorts(&tokens, proto: proto)
        } else if proto.isICMP, tokens.peek != nil {
            // Type names as the addresses' version means them (`icmp` on IPv6 is ICMPv6).
            let family = source.match.family ?? destination.match.family
            (sourcePorts, destinationPorts) = try parseICMP(&tokens, proto: family.map(proto.on) ?? proto)
        }
        if let extra = tokens.next() {
            throw SyntaxError(column: extra.column, message: "unexpected '\(extra.text)' at end of entry")
        }
        if let a = source.match.family, let b = destination.match.family, a != b {
            throw SyntaxError(column: destination.column, message: "source is \(a) but destination is \(b)")
        }
        return PolicyEntry(action: action, proto: proto, local: source.match, localPorts: sourcePorts,
                           remote: destination.match, remotePorts: destinationPorts)
    }

    private static func parseAddress(_ tokens: inout Tokenizer, what: String) throws(SyntaxError) -> (match: AddressMatch, column: Int) {
        let token = try tokens.next(expecting: "\(what) address ('any', 'host A', 'A WILDCARD' or 'A/len')")
        let text = token.text.lowercased()
        if text == "any" { return (.any, token.column) }
        if text == "host" {
            let hostToken = try tokens.next(expecting: "an address after 'host'")
            guard let address = IPAddress(hostToken.text) else {
                throw SyntaxError(column: hostToken.column, message: "invalid address '\(hostToken.text)'")
            }
            return (.pattern(.host(address)), token.column)
        }
        if token.text.utf8.contains(UInt8(ascii: "/")) {
            guard let pattern = AddressPattern(token.text) else {
                throw SyntaxError(column: token.column, message: "invalid address/length or address/mask '\(token.text)'")
            }
            return (.pattern(pattern), token.column)
        }
        guard let address = IPAddress(token.text) else {
            throw SyntaxError(column: token.column, message: "invalid \(what) address '\(token.text)'")
        }
        let wildcardToken = try tokens.next(expecting: "a wildcard mask after '\(token.text)' (or write 'host \(token.text)')")
        guard let wildcard = IPAddress(wildcardToken.text), wildcard.family == address.family else {
            throw SyntaxError(column: wildcardToken.column, message: "invalid wildcard mask '\(wildcardToken.text)'")
        }
        let pattern = AddressPattern(family: address.family, address: address.bits,
                                     mask: ~wildcard.bits & address.family.allOnes)
        return (.pattern(pattern), token.column)
    }

    private static func isPortOperator(_ text: String) -> Bool {
        ["eq", "range", "lt", "gt", "neq"].contains(text.lowercased())
    }

    private static func parsePorts(_ tokens: inout Tokenizer, proto: IPProtocol) throws(SyntaxError) -> PortRange {
        guard let op = tokens.next() else { return .all }
        guard proto.hasPorts else {
            throw SyntaxError(column: op.column, message: "port operator '\(op.text)' needs tcp, udp, sctp or udplite, not \(proto)")
        }
        func port() throws(SyntaxError) -> UInt16 {
            let token = try tokens.next(expecting: "a port after '\(op.text)'")
            guard let value = portNumber(token.text) else {
                throw SyntaxError(column: token.column, message: "invalid port '\(token.text)' (0-65535 or a name such as 'https')")
            }
            return value
        }
        switch op.text.lowercased() {
        case "eq":
            return .single(try port())
        case "range":
            let low = try port(), high = try port()
            guard let range = PortRange(low, high) else {
                throw SyntaxError(column: op.column, message: "port range \(low) \(high) is inverted")
            }
            return range
        case "lt":
            let value = try port()
            guard value > 0, let range = PortRange(0, value - 1) else {
                throw SyntaxError(column: op.column, message: "'lt 0' matches no port")
            }
            return range
        case "gt":
            let value = try port()
            guard value < .max, let range = PortRange(value + 1, .max) else {
                throw SyntaxError(column: op.column, message: "'gt 65535' matches no port")
            }
            return range
        default:
            throw SyntaxError(column: op.column, message: "'neq' is not one port range: write a 'lt' entry and a 'gt' entry instead")
        }
    }

    private static func parseICMP(_ tokens: inout Tokenizer, proto: IPProtocol) throws(SyntaxError) -> (PortRange, PortRange) {
        guard let typeToken = tokens.next() else { return (.all, .all) }
        let names = proto == .icmp ? icmpTypes : icmp6Types
        guard let type = names[typeToken.text.lowercased()] ?? UInt8(typeToken.text).map(UInt16.init) else {
            throw SyntaxError(column: typeToken.column, message: "invalid ICMP type '\(typeToken.text)'")
        }
        guard let codeToken = tokens.next() else { return (.single(type), .all) }
        guard let code = UInt8(codeToken.text) else {
            throw SyntaxError(column: codeToken.column, message: "invalid ICMP code '\(codeToken.text)' (0-255)")
        }
        return (.single(type), .single(UInt16(code)))
    }

    /// A port number or one of the common service names.
    public static func portNumber(_ text: String) -> UInt16? {
        if text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) { return UInt16(text) }
        return portNames[text.lowercased()]
    }

    static let portNames: [String: UInt16] = [
        "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "dns": 53,
        "bootps": 67, "bootpc": 68, "tftp": 69, "www": 80, "http": 80, "pop3": 110, "ntp": 123,
        "imap": 143, "imap4": 143, "snmp": 161, "snmptrap": 162, "bgp": 179, "ldap": 389,
        "https": 443, "isakmp": 500, "syslog": 514, "ldaps": 636, "submission": 587,
        "rdp": 3389, "non500-isakmp": 4500, "sip": 5060,
    ]

    static let icmpTypes: [String: UInt16] = [
        "echo-reply": 0, "unreachable": 3, "source-quench": 4, "redirect": 5, "echo": 8,
        "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
        "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14,
    ]

    static let icmp6Types: [String: UInt16] = [
        "unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
        "echo-request": 128, "echo": 128, "echo-reply": 129, "router-solicitation": 133,
        "router-advertisement": 134, "nd-ns": 135, "nd-na": 136,
    ]
}
