import NIOCore
import TEDModel
import TEDWire

/// Where probes for a packet go: its local rule and the probe's destination. One discovery
/// at a time runs per key; later packets with the same key join it.
struct FlowKey: Hashable, Sendable {
    var ruleIndex: Int
    var destination: IPAddress
    var destinationPort: UInt16
}

/// One discovery in flight: a small state machine driven by the initiator's `tick`.
struct PendingDiscovery: Sendable {
    private enum State: Sendable {
        /// Sent `sends` probes; at `due` send the next one.
        case awaitingRetransmit(due: NIODeadline)
        /// Sent the last probe; at `due` give up.
        case awaitingLastAnswer(due: NIODeadline)
    }

    /// What `tick` says to do when the discovery falls due.
    enum Step: Sendable {
        case retransmit(OutgoingProbe)
        /// An extra send, off the schedule, echoing a cookie learned since the last send.
        case echo(OutgoingProbe)
        case timedOut
    }

    let key: FlowKey
    let cookie: Cookie
    let packet: Packet
    let rule: PolicyRule
    let localProxy: Proxy
    let firstSent: NIODeadline
    /// What the last send sent, and the cookie it echoed.
    private var lastProbe: OutgoingProbe
    private var lastEchoed: ReturnCookie?
    private let message: Probe
    /// The newest challenge's cookie for this discovery: every later send echoes it.
    private var challenged: ReturnCookie?
    /// Whether a challenge already made an extra send since the last scheduled one: at most
    /// one per send, so challenges cannot turn a discovery into a stream.
    private var echoedSinceSend = false
    /// When an extra send echoing a learned cookie is due (`offer`).
    private var echoDue: NIODeadline?
    /// Jittered waits after each send, one per send.
    private let waits: [TimeAmount]
    private(set) var sends = 1
    private(set) var joined = 0
    private var state: State

    /// A discovery whose first probe goes out at `now`.
    init(key: FlowKey, cookie: Cookie, packet: Packet, rule: PolicyRule, localProxy: Proxy,
         probe: OutgoingProbe, message: Probe, waits: [TimeAmount], now: NIODeadline) {
        self.message = message
        self.key = key
        self.cookie = cookie
        self.packet = packet
        self.rule = rule
        self.localProxy = localProxy
        self.firstSent = now
        self.lastProbe = probe
        self.lastEchoed = message.cookie
        self.waits = waits.isEmpty ? [.seconds(1)] : waits
        self.state = Self.state(afterSend: 1, waits: self.waits, now: now)
    }

    var nextEvent: NIODeadline {
        let scheduled = switch state {
        case .awaitingRetransmit(let due), .awaitingLastAnswer(let due): due
        }
        return echoDue.map { min($0, scheduled) } ?? scheduled
    }

    mutating func join() { joined += 1 }

    /// A challenge for this discovery: its cookie is kept (the newest wins) for every later
    /// send. Returns the probe to send at once, echoing it, unless a challenge already made
    /// an extra send since the last scheduled one; then the cookie goes with the next.
    /// The schedule is left as it is: a challenge never shortens or ends a discovery.
    mutating func take(_ cookie: ReturnCookie) -> OutgoingProbe? {
        challenged = cookie
        guard !echoedSinceSend else { return nil }
        echoedSinceSend = true
        var echo = probe(echoing: cookie, attempt: sends)
        echo.answersChallenge = true
        return echo
    }

    /// A cookie for this gateway's identity was learned at `now` (`Initiator.answer`): a
    /// discovery with no challenge of its own, whose last send did not echo it and which has
    /// made no extra send since, sends once more at its next step. Returns whether it will.
    mutating func offer(_ learned: ReturnCookie, now: NIODeadline) -> Bool {
        guard challenged == nil, !echoedSinceSend, lastEchoed != learned else { return false }
        echoedSinceSend = true
        echoDue = now
        return true
    }

    /// Advances to `now`: an extra send, a retransmission, a timeout, or nothing yet. A retransmission
    /// echoes the discovery's own challenge cookie, or else `learned` (a cookie for this
    /// gateway's identity that a challenge to another probe taught), or none.
    mutating func step(now: NIODeadline, learned: ReturnCookie?) -> Step? {
        guard nextEvent <= now else { return nil }
        if let due = echoDue, due <= now {
            echoDue = nil
            var echo = probe(echoing: challenged ?? learned, attempt: sends)
            echo.answersChallenge = true
            return .echo(echo)
        }
        switch state {
        case .awaitingRetransmit:
            sends += 1
            echoedSinceSend = false
            echoDue = nil
            state = Self.state(afterSend: sends, waits: waits, now: now)
            return .retransmit(probe(echoing: challenged ?? learned, attempt: sends))
        case .awaitingLastAnswer:
            return .timedOut
        }
    }

    /// The probe echoing `cookie`, encoded again only when the cookie changed.
    private mutating func probe(echoing cookie: ReturnCookie?, attempt: Int) -> OutgoingProbe {
        if cookie != lastEchoed {
            let bytes = TEDCodec.encode(.probe(message.echoing(cookie)))
            lastProbe = OutgoingProbe(bytes: bytes, cookie: lastProbe.cookie, source: lastProbe.source,
                                      sourcePort: lastProbe.sourcePort, destination: lastProbe.destination,
                                      destinationPort: lastProbe.destinationPort, attempt: attempt)
            lastEchoed = cookie
        }
        return lastProbe.attempt(attempt)
    }

    private static func state(afterSend send: Int, waits: [TimeAmount], now: NIODeadline) -> State {
        let due = now + waits[min(send - 1, waits.count - 1)]
        return send < waits.count ? .awaitingRetransmit(due: due) : .awaitingLastAnswer(due: due)
    }
}

extension OutgoingProbe {
    func attempt(_ number: Int) -> OutgoingProbe {
        OutgoingProbe(bytes: bytes, cookie: cookie, source: source, sourcePort: sourcePort,
                      destination: destination, destinationPort: destinationPort, attempt: number)
    }
}
