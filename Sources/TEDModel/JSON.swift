/// A JSON value with ordered object keys, for the `--json` outputs scripts rely on.
public indirect enum JSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (lhs: JSON, rhs: JSON) -> Bool { lhs.rendered == rhs.rendered }
    public func hash(into hasher: inout Hasher) { hasher.combine(rendered) }

    /// Compact JSON text.
    public var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    private func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value): out += value.isFinite ? String(value) : "null"
        case .string(let value): Self.quote(value, into: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.render(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension AddressPattern {
    /// `{"address":"198.18.2.0","mask":"255.255.255.0"}` plus the given extra members.
    public func json(_ extra: [(String, JSON)] = []) -> JSON {
        .object([("address", .string("\(address)")), ("mask", .string("\(mask)"))] + extra)
    }
}

extension PortRange {
    /// `[low, high]`.
    public var json: JSON { .array([.int(Int(lower)), .int(Int(upper))]) }
}

extension HalfProxy {
    /// `{"address":...,"mask":...,"ports":[low,high]}`.
    public var json: JSON { pattern.json([("ports", ports.json)]) }
}

extension Proxy {
    /// The members `protocol`, `initiator_side`, `responder_side` (protocol 0 = any).
    public var jsonMembers: [(String, JSON)] {
        [("protocol", .int(Int(proto.number))), ("initiator_side", initiatorSide.json),
         ("responder_side", responderSide.json)]
    }

    /// A TED response entry: `protocol`, `responder_side`, `initiator_side`, as `ted decode` prints it.
    public var entryJSON: JSON {
        .object([("protocol", .int(Int(proto.number))), ("responder_side", responderSide.json),
                 ("initiator_side", initiatorSide.json)])
    }
}
