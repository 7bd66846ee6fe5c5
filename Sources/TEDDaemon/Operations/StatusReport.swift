import NIOCore
import TEDEngine
import TEDModel
import TEDVici
import TEDWire

#if canImport(Glibc)
import Glibc
#endif

/// What `ted status` shows: counters, discoveries in flight, the cache, and tunnels.
public struct StatusReport: Sendable {
    public var identity: Identity
    public var initiator: InitiatorSnapshot?
    public var responder: ResponderCounters?
    /// What died at the socket: sends refused by errno, failed reads, unsendable datagrams.
    public var socket: SocketCounters
    public var tunnels: [TunnelRecord]
    public var held: HeldStatus?
    /// The IKE daemon's connection (nil: no `ike` section).
    public var charon: CharonStatus?
    public var dataplane = DataplaneMode.none
    public var now: NIODeadline

    public init(identity: Identity, initiator: InitiatorSnapshot?, responder: ResponderCounters?,
                socket: SocketCounters = SocketCounters(), tunnels: [TunnelRecord], held: HeldStatus? = nil, now: NIODeadline) {
        self.identity = identity
        self.initiator = initiator
        self.responder = responder
        self.socket = socket
        self.tunnels = tunnels
        self.held = held
        self.now = now
    }

    public var json: JSON {
        func seconds(_ deadline: NIODeadline) -> JSON {
            .double(Double((deadline - now).nanoseconds / 1_000_000) / 1000)
        }
        var members: [(String, JSON)] = [("identity", identity.json), ("dataplane", .string(dataplane.rawValue))]
        if let charon {
            members.append(("charon", .object([("connected", .bool(charon.connectedSince != nil)),
                                               ("since", charon.connectedSince.map { .string(CharonStatus.utc($0)) } ?? .null),
                                               ("reconnects", .int(charon.reconnects))])))
        }
        if let i = initiator {
            let c = i.counters
            members.append(("initiator", .object([
                ("probes_sent", .int(c.probesSent)), ("retransmits", .int(c.retransmits)),
                ("challenges_answered", .int(c.challengesAnswered)),
                ("responses_accepted", .int(c.responsesAccepted)), ("discoveries", .int(c.discoveries)),
                ("cache_hits", .int(c.cacheHits)), ("joins", .int(c.joins)),
                ("failures", .object(c.failures.sorted { $0.key.rawValue < $1.key.rawValue }
                    .map { ($0.key.rawValue, .int($0.value)) })),
                ("ignored", .object(c.responsesIgnored.sorted { $0.key.rawValue < $1.key.rawValue }
                    .map { ($0.key.rawValue, .int($0.value)) })),
                ("rejects", .int(c.rejects.values.reduce(0, +))),
                ("pending", .array(i.pending.map {
                    .object([("packet", .string("\($0.packet)")), ("destination", .string("\($0.destination)")),
                             ("attempts", .int($0.attempts)), ("next_in_s", seconds($0.nextEvent)),
                             ("joined", .int($0.joined))])
                })),
                ("cache", .array(i.cache.map {
                    .object([("peer", $0.peer.json), ("intersection", .object($0.intersection.jsonMembers)),
                             ("local_entry", .int($0.localRuleIndex)), ("expires_in_s", seconds($0.expires))])
                })),
                ("failed", .array(i.failures.map {
                    .object([("packet", .string("\($0.packet)")), ("reason", .string($0.reason.rawValue)),
                             ("expires_in_s", seconds($0.expires))])
                })),
                ("refuted", .array(i.refuted.map {
                    .object([("peer", .string("\($0.peer)")), ("intersection", .object($0.intersection.jsonMembers)),
                             ("expires_in_s", seconds($0.expires))])
                })),
            ])))
        }
        if let r = responder {
            members.append(("responder", .object([
                ("received", .int(r.received)), ("replies", .int(r.replies)),
                ("challenges", .int(r.challenges)), ("cookies_accepted", .int(r.cookiesAccepted)),
                ("cookies_refused", .object(r.cookiesRefused.map { ($0.key.rawValue, .int($0.value)) }.sorted { $0.0 < $1.0 })),
                ("drops", .object(r.drops.map { ($0.key.description, .int($0.value)) }.sorted { $0.0 < $1.0 })),
            ])))
        }
        func byErrno(_ counts: [String: Int]) -> JSON { .object(Self.sorted(counts).map { ($0.key, .int($0.value)) }) }
        members.append(("socket", .object([
            ("send_errors", byErrno(socket.sendErrors)), ("receive_errors", byErrno(socket.receiveErrors)),
            ("unsendable", .int(socket.unsendable)), ("receive_overflows", .int(socket.receiveOverflows)),
            ("intercept_overflows", .int(socket.interceptOverflows)),
        ])))
        members.append(("tunnels", .array(tunnels.map(\.json))))
        if let held {
            members.append(("held", .object([
                ("packets", .int(held.packets)), ("bytes", .int(held.bytes)),
                ("flows", .array(held.flows.map { .object([("packet", .string("\($0.packet)")), ("packets", .int($0.count))]) })),
            ])))
        }
        return .object(members)
    }

    private static func sorted(_ counts: [String: Int]) -> [(key: String, value: Int)] {
        counts.sorted { $0.key < $1.key }
    }

    public var lines: [String] {
        var lines = ["ted \(identity)", "dataplane: \(dataplane.rawValue)"]
        if let charon { lines.append("charon: \(charon)") }
        if let i = initiator {
            let c = i.counters
            lines.append("initiator: \(c.probesSent) probes (\(c.retransmits) retransmitted), \(c.discoveries) discovered, "
                + "\(c.failures.values.reduce(0, +)) failed, \(c.cacheHits) cache hits, \(c.joins) joined")
            if !c.responsesIgnored.isEmpty || !c.rejects.isEmpty {
                let aside = c.responsesIgnored.map { "\($0.key.rawValue) \($0.value)" } + c.rejects.map { "\($0.key) \($0.value)" }
                lines.append("answers set aside: \(aside.sorted().joined(separator: ", "))")
            }
            lines.append("pending (\(i.pending.count)):")
            for p in i.pending { lines.append("  \(p.packet) -> \(p.destination) attempt \(p.attempts)") }
            lines.append("cache (\(i.cache.count)):")
            for e in i.cache {
                let left = Double((e.expires - now).nanoseconds / 1_000_000) / 1000
                lines.append("  \(e.peer.address)  \(e.intersection)  expires in \(left) s")
            }
            if !i.failures.isEmpty {
                lines.append("recent failures (\(i.failures.count)):")
                for f in i.failures { lines.append("  \(f.packet): \(f.reason)") }
            }
            if !i.refuted.isEmpty {
                lines.append("refuted by IKE (\(i.refuted.count)):")
                for r in i.refuted {
                    let left = Double((r.expires - now).nanoseconds / 1_000_000) / 1000
                    lines.append("  \(r.peer)  \(r.intersection)  for \(left) s more")
                }
            }
        }
        if let r = responder {
            let drops = r.drops.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")
            let challenged = r.challenges == 0 && r.cookiesAccepted == 0
                ? "" : ", \(r.challenges) challenged, \(r.cookiesAccepted) cookies taken"
            lines.append("responder: \(r.received) received, \(r.replies) answered\(challenged)\(drops.isEmpty ? "" : "; dropped: \(drops)")")
        }
        if socket != SocketCounters() {
            func byErrno(_ counts: [String: Int]) -> String { Self.sorted(counts).map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
            var parts: [String] = []
            if !socket.sendErrors.isEmpty { parts.append("sends refused: \(byErrno(socket.sendErrors))") }
            if !socket.receiveErrors.isEmpty { parts.append("reads failed: \(byErrno(socket.receiveErrors))") }
            if socket.unsendable > 0 { parts.append("\(socket.unsendable) unsendable") }
            if socket.receiveOverflows > 0 { parts.append("\(socket.receiveOverflows) dropped by the kernel, receive buffer full") }
            if socket.interceptOverflows > 0 {
                parts.append("\(socket.interceptOverflows) intercepted probes dropped by the kernel, receive buffer full")
            }
            lines.append("socket: \(parts.joined(separator: "; "))")
        }
        lines.append("tunnels (\(tunnels.count)):")
        for t in tunnels { lines.append("  \(t.description)") }
        if let held {
            lines.append("held first packets: \(held.packets) (\(held.bytes) bytes) in \(held.flows.count) flows")
            for flow in held.flows.prefix(HeldStatus.flowsShown) { lines.append("  \(flow.packet): \(flow.count)") }
        }
        return lines
    }
}

/// Whether ted holds a working connection to charon's VICI socket, and since when.
public struct CharonStatus: Hashable, Sendable, CustomStringConvertible {
    /// When the connection was made, in seconds since the Unix epoch; nil: disconnected.
    public var connectedSince: Double?
    /// Connections made again after one was lost.
    public var reconnects: Int

    public init(connectedSince: Double?, reconnects: Int) {
        self.connectedSince = connectedSince
        self.reconnects = reconnects
    }

    /// `connected since 2026-12-08T01:50:44Z` or `disconnected`, and the reconnections.
    public var description: String {
        let state = connectedSince.map { "connected since \(Self.utc($0))" } ?? "disconnected"
        return reconnects == 0 ? state : "\(state) (\(reconnects) reconnections)"
    }

    /// A time as ISO 8601 in UTC, to the second.
    static func utc(_ seconds: Double) -> String {
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// First packets waiting for their tunnel: in all, and per flow (oldest first).
public struct HeldStatus: Sendable {
    public var packets: Int
    public var bytes: Int
    public var flows: [(packet: Packet, count: Int)]
    static let flowsShown = 16
}

/// A tunnel ted asked the IKE daemon for.
public struct TunnelRecord: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var peer: IPAddress
    /// The discovered intersection; nil for a tunnel adopted from the IKE daemon after a restart.
    public var intersection: Proxy?
    /// The child's selectors, as the IKE daemon reports them; shown in its notation.
    public var selectors: [TrafficSelector]
    public var state: String

    public init(name: String, peer: IPAddress, intersection: Proxy?, selectors: [TrafficSelector], state: String) {
        self.name = name
        self.peer = peer
        self.intersection = intersection
        self.selectors = selectors
        self.state = state
    }

    /// strongSwan's `local_ts` and `remote_ts` of `selectors`, each once, in order.
    public var localTS: [String] { Self.unique(selectors.map { TrafficSelectors.strongSwan($0).local }) }
    public var remoteTS: [String] { Self.unique(selectors.map { TrafficSelectors.strongSwan($0).remote }) }

    private static func unique(_ texts: [String]) -> [String] {
        var seen: Set<String> = []
        return texts.filter { seen.insert($0).inserted }
    }

    public var json: JSON {
        .object([("name", .string(name)), ("peer", .string("\(peer)")), ("state", .string(state)),
                 ("intersection", intersection.map { .object($0.jsonMembers) } ?? .null),
                 ("local_ts", .array(localTS.map { .string($0) })), ("remote_ts", .array(remoteTS.map { .string($0) }))])
    }

    public var description: String {
        "\(name) \(state) peer \(peer): \(localTS.joined(separator: ",")) === \(remoteTS.joined(separator: ","))"
    }
}
