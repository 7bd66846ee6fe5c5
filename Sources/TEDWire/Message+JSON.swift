import TEDModel

extension Message {
    /// The `ted decode --json` object (field names and order are a contract for scripts).
    public var json: JSON {
        func hex(_ cookie: Cookie) -> String {
            let digits = String(cookie, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        func identity(_ id: Identity) -> JSON {
            .object([("address", .string("\(id.address)")), ("port", .int(Int(id.effectivePort)))])
        }
        switch self {
        case .probe(let probe):
            let s = probe.summary
            return .object([
                ("exchange", .string("probe")), ("initiator_cookie", .string(hex(probe.initiatorCookie))),
                ("responder_cookie", .string(hex(0))), ("capabilities", .int(Int(probe.capabilities.rawValue))),
                ("identity", identity(probe.identity)),
                ("proxy_address", probe.proxyAddress.map { $0.pattern.json([("protocol", .int(Int($0.proto.number)))]) } ?? .null),
                ("summary", .object([
                    ("ip_version", .int(Int(s.family.rawValue))), ("protocol", .int(Int(s.proto.number))),
                    ("source", .string("\(s.source)")), ("destination", .string("\(s.destination)")),
                    ("source_port", s.sourcePort.map { .int(Int($0)) } ?? .null),
                    ("destination_port", s.destinationPort.map { .int(Int($0)) } ?? .null),
                ])),
            ])
        case .response(let response):
            return .object([
                ("exchange", .string("response")), ("initiator_cookie", .string(hex(response.initiatorCookie))),
                ("responder_cookie", .string(hex(response.responderCookie))),
                ("capabilities", .int(Int(response.capabilities.rawValue))), ("identity", identity(response.identity)),
                ("proxy_address", .null), ("entries", .array(response.entries.map(\.entryJSON))),
            ])
        case .challenge(let challenge):
            return .object([
                ("exchange", .string("challenge")), ("initiator_cookie", .string(hex(challenge.initiatorCookie))),
                ("responder_cookie", .string(hex(0))), ("capabilities", .int(Int(challenge.capabilities.rawValue))),
                ("cookie", .string(challenge.cookie.description)),
            ])
        }
    }

    /// Readable lines for `ted decode`.
    public var lines: [String] {
        switch self {
        case .probe(let p):
            var lines = ["TED probe (exchange 240), initiator cookie \(String(p.initiatorCookie, radix: 16)), capabilities \(p.capabilities.rawValue)",
                         "  identity       \(p.identity)"]
            if let proxy = p.proxyAddress { lines.append("  proxy address  \(proxy.proto) \(proxy.pattern)") }
            lines.append("  packet summary \(p.summary)")
            if let cookie = p.cookie { lines.append("  cookie         \(cookie)") }
            return lines
        case .response(let r):
            var lines = ["TED response (exchange 241), cookies \(String(r.initiatorCookie, radix: 16))/\(String(r.responderCookie, radix: 16)), capabilities \(r.capabilities.rawValue)",
                         "  identity       \(r.identity)"]
            for (index, entry) in r.entries.enumerated() { lines.append("  entry \(index + 1)        \(entry)") }
            return lines
        case .challenge(let c):
            return ["TED challenge (exchange 242), initiator cookie \(String(c.initiatorCookie, radix: 16)), capabilities \(c.capabilities.rawValue)",
                    "  cookie         \(c.cookie)"]
        }
    }
}
