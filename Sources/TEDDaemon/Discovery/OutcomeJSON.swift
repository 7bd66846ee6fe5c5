import NIOCore
import TEDEngine
import TEDModel
import TEDVici
import TEDWire

extension Identity {
    /// `{"address":"198.51.100.2","port":500}` with the effective port.
    public var json: JSON { .object([("address", .string("\(address)")), ("port", .int(Int(effectivePort)))]) }
}

extension DiscoveryOutcome {
    /// The `ted probe --json` object.
    public var json: JSON {
        switch self {
        case .discovered(let d, let cached):
            return .object([
                ("discovered", .bool(true)), ("peer", d.peer.json),
                ("entries", .array(d.entries.map(\.entryJSON))), ("chosen_entry", .int(d.chosenEntry + 1)),
                ("intersection", .object([("empty", .bool(false))] + d.intersection.jsonMembers)),
                ("packet_inside", .bool(true)), ("rtt_ms", .double(d.rtt.milliseconds)),
                ("attempts", .int(d.attempts)), ("cached", .bool(cached)),
                ("local_entry", .int(d.localRule.index)),
            ])
        case .failed(let f, let cached):
            return .object([
                ("discovered", .bool(false)), ("reason", .string(f.reason.rawValue)),
                ("peer", f.peer?.json ?? .null), ("entries", .array(f.entries.map(\.entryJSON))),
                ("intersection", .object([("empty", .bool(f.reason == .emptyIntersection))])),
                ("packet_inside", .bool(false)), ("attempts", .int(f.attempts)), ("cached", .bool(cached)),
                ("local_entry", .int(f.localRule.index)),
            ])
        case .notProtected:
            return .object([("discovered", .bool(false)), ("reason", .string("not_protected"))])
        case .cancelled:
            return .object([("discovered", .bool(false)), ("reason", .string("cancelled"))])
        }
    }

    /// The child ted would propose to IKE for a discovery, under `policy` (whose entries
    /// above the matched one are left out).
    public func child(under policy: Policy) -> TrafficSelector? {
        guard case .discovered(let d, _) = self else { return nil }
        return TrafficSelector.proposal(intersection: d.intersection, packet: d.packet,
                                        excluding: policy.entries(above: d.localRule.index))
    }

    /// `ted probe --json`, with the child that would be proposed.
    public func json(child: TrafficSelector?) -> JSON {
        guard let child, case .object(let members) = json else { return json }
        let (local, remote) = TrafficSelectors.strongSwan(child)
        return .object(members + [("child", .object([("local_ts", .string(local)), ("remote_ts", .string(remote))]))])
    }

    /// `ted probe`'s lines, with the child that would be proposed.
    public func lines(child: TrafficSelector?) -> [String] {
        guard let child else { return lines }
        let (local, remote) = TrafficSelectors.strongSwan(child)
        return lines + ["child proposed to IKE: \(local) === \(remote)"]
    }

    /// `ted probe`'s human lines, like dig.
    public var lines: [String] {
        switch self {
        case .discovered(let d, let cached):
            var lines = [";; responder \(d.peer) answered in \(format3(d.rtt.milliseconds)) ms after \(d.attempts) probe(s)\(cached ? " (cached)" : "")"]
            lines.append(";; entries offered:")
            for (index, entry) in d.entries.enumerated() {
                lines.append("   \(index + 1)\(index == d.chosenEntry ? "*" : " ") \(entry)")
            }
            lines.append(";; local entry \(d.localRule.index): \(d.localRule.text)")
            lines.append("intersection: \(d.intersection)")
            lines.append("packet \(d.packet) lies inside: a tunnel to \(d.peer.address) can be negotiated")
            return lines
        case .failed(let f, let cached):
            var lines = [";; no usable answer for \(f.packet): \(f.reason)\(cached ? " (recent failure, cached)" : "") after \(f.attempts) probe(s) to \(f.destination)"]
            if let peer = f.peer {
                lines.append(";; responder \(peer) offered:")
                for (index, entry) in f.entries.enumerated() { lines.append("   \(index + 1)  \(entry)") }
            }
            return lines
        case .notProtected(let p):
            return [";; no permit entry of the local policy covers \(p): nothing to discover"]
        case .cancelled:
            return [";; cancelled"]
        }
    }
}

extension TimeAmount {
    /// The amount in milliseconds.
    public var milliseconds: Double { Double(nanoseconds) / 1e6 }
}

/// A number rounded to three decimals, for human output.
public func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return "\(scaled)"
}
