import TEDEngine
import TEDWire

/// What happened to datagrams at the TED socket: the one place a reply the engines
/// counted as sent can still die (a filter, a missing route or neighbour, a full buffer).
public struct SocketCounters: Hashable, Sendable {
    /// Sends the kernel refused, by errno name (`EPERM` from a filter, `EHOSTUNREACH`,
    /// `ENETUNREACH`, `EAGAIN` for a full socket buffer, ...).
    public var sendErrors: [String: Int] = [:]
    /// Reads that failed and left the socket open, by errno name.
    public var receiveErrors: [String: Int] = [:]
    /// Datagrams that could not be sent at all (an IPv6 destination on an IPv4 socket).
    public var unsendable = 0
    /// Datagrams the kernel dropped before ted read them, its receive buffer full
    /// (SO_RXQ_OVFL): probes and answers lost to a burst or a flood.
    public var receiveOverflows = 0
    /// Intercepted probes the kernel dropped the same way, on the interception sockets.
    public var interceptOverflows = 0

    public init() {}
}

/// Every count of discovery, taken at once: `ted status` shows it and the metrics
/// endpoint renders it at scrape time (`prometheusText`), so the two agree by construction.
/// The engines own their counts; the driver owns only the socket's.
public struct DiscoveryCounts: Sendable {
    public var initiator: InitiatorCounters?
    public var cacheEntries: Int
    public var pending: Int
    public var responder: ResponderCounters?
    public var socket: SocketCounters
    public var tunnels: Int

    /// The counts in the Prometheus text exposition format, one family per name.
    public var prometheusText: String {
        var text = PrometheusText()
        if let c = initiator {
            text.counter("ted_probes_sent_total", "Probes sent (first transmissions).", c.probesSent)
            text.counter("ted_probes_retransmitted_total", "Probes sent again after a timeout.", c.retransmits)
            text.counter("ted_challenges_answered_total", "Probes sent again at once with a responder's challenge cookie.",
                         c.challengesAnswered)
            text.counter("ted_responses_accepted_total", "Responses that ended a discovery.", c.responsesAccepted)
            text.counter("ted_discoveries_total", "Discoveries that found a peer.", c.discoveries)
            text.counter("ted_failures_total", "Discoveries that failed, by reason.", "reason",
                         c.failures.map { ($0.key.rawValue, $0.value) })
            text.counter("ted_responses_ignored_total", "Well-formed responses set aside, by reason.", "reason",
                         c.responsesIgnored.map { ($0.key.rawValue, $0.value) })
            text.gauge("ted_cache_entries", "Discoveries cached.", cacheEntries)
            text.gauge("ted_pending_discoveries", "Discoveries in flight.", pending)
        }
        text.counter("ted_rejects_total", "Datagrams rejected as malformed, either role, by reason.", "reason", rejects)
        if let r = responder {
            text.counter("ted_responder_received_total", "Datagrams the responder read.", r.received)
            text.counter("ted_responder_replies_total", "Responses sent.", r.replies)
            text.counter("ted_responder_challenges_total", "Rate-limited probes challenged instead of dropped.", r.challenges)
            text.counter("ted_responder_cookies_accepted_total", "Probes whose echoed cookie was taken.", r.cookiesAccepted)
            text.counter("ted_responder_cookies_refused_total",
                         "Echoed cookies not taken, by reason (the probe went on as one without).", "reason",
                         r.cookiesRefused.map { ($0.key.rawValue, $0.value) })
            text.counter("ted_responder_drops_total", "Datagrams the responder dropped, by reason.", "reason",
                         r.drops.map { ($0.key.metricLabel, $0.value) })
        }
        text.counter("ted_send_errors_total", "Sends the kernel refused, by errno.", "errno", socket.sendErrors.map { ($0.key, $0.value) })
        text.counter("ted_receive_errors_total", "Reads that failed, by errno.", "errno", socket.receiveErrors.map { ($0.key, $0.value) })
        text.counter("ted_receive_overflows_total", "Datagrams the kernel dropped before ted read them (receive buffer full).",
                     socket.receiveOverflows)
        text.counter("ted_intercept_overflows_total", "Intercepted probes the kernel dropped before ted read them (receive buffer full).",
                     socket.interceptOverflows)
        text.counter("ted_unsendable_total", "Datagrams that could not be sent (IPv6 destination on an IPv4 socket).", socket.unsendable)
        text.gauge("ted_tunnels", "Tunnels up.", tunnels)
        return text.rendered
    }

    /// Malformed datagrams of both roles, by the decoder's reason.
    var rejects: [(String, Int)] {
        let initiator = (self.initiator?.rejects ?? [:]).map { ($0.key.metricLabel, $0.value) }
        let responder = (self.responder?.drops ?? [:]).compactMap { reason, count -> (String, Int)? in
            if case .rejected(let why) = reason { (why.rawValue, count) } else { nil }
        }
        return initiator + responder
    }
}

extension RejectReason {
    var metricLabel: String {
        switch self {
        case .undecodable(let why): why.rawValue
        case .unexpectedProbe: "unexpected_probe"
        }
    }
}

/// Prometheus text exposition: `# HELP`, `# TYPE` and the samples of each family.
struct PrometheusText {
    private(set) var rendered = ""

    mutating func counter(_ name: String, _ help: String, _ value: Int) {
        family(name, help, "counter", [("", value)])
    }

    /// A counter with one label: the counts of equal label values summed, in a stable order;
    /// with none yet, the family alone (so every metric is listed from the first scrape).
    mutating func counter(_ name: String, _ help: String, _ label: String, _ values: [(String, Int)]) {
        let summed = Dictionary(values, uniquingKeysWith: +)
        family(name, help, "counter", summed.sorted { $0.key < $1.key }.map { ("{\(label)=\"\($0.key)\"}", $0.value) })
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Int) {
        family(name, help, "gauge", [("", "\(value)")])
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double) {
        family(name, help, "gauge", [("", "\(value)")])
    }

    /// A gauge of value 1 whose labels carry the facts (`ted_build_info`).
    mutating func info(_ name: String, _ help: String, _ labels: [(String, String)]) {
        let text = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
        family(name, help, "gauge", [("{\(text)}", "1")])
    }

    /// A label value as the exposition format writes it: backslash, quote and line feed escaped.
    static func escaped(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private mutating func family(_ name: String, _ help: String, _ type: String, _ samples: [(labels: String, value: Int)]) {
        family(name, help, type, samples.map { ($0.labels, "\($0.value)") })
    }

    private mutating func family(_ name: String, _ help: String, _ type: String, _ samples: [(labels: String, value: String)]) {
        rendered += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for sample in samples { rendered += "\(name)\(sample.labels) \(sample.value)\n" }
    }
}
