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
        case timedOut
    }

    let key: FlowKey
    let cookie: Cookie
    let packet: Packet
    let rule: PolicyRule
    let localProxy: Proxy
    let firstSent: NIODeadline
    /// What every (re)transmission sends; a challenge's cookie changes it.
    private var firstProbe: OutgoingProbe
    private let message: Probe
    /// Challenges answered (`echo`).
    private(set) var echoes = 0
    /// Challenges one discovery answers at most: a genuine path challenges each cookieless
    /// probe at most once, and after the first echo every probe carries the cookie.
    static let maxEchoes = 2
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
        self.firstProbe = probe
        self.waits = waits.isEmpty ? [.seconds(1)] : waits
        self.state = Self.state(afterSend: 1, waits: self.waits, now: now)
    }

    var nextEvent: NIODeadline {
        switch state {
        case .awaitingRetransmit(let due), .awaitingLastAnswer(let due): due
        }
    }

    mutating func join() { joined += 1 }

    /// The probe again with `cookie`, from now on for retransmissions too; nil after
    /// `maxEchoes`. The retransmission schedule is left as it is: the echo is an extra send.
    mutating func echo(_ cookie: ReturnCookie) -> OutgoingProbe? {
        guard echoes < Self.maxEchoes else { return nil }
        echoes += 1
        let bytes = TEDCodec.encode(.probe(message.echoing(cookie)))
        firstProbe = OutgoingProbe(bytes: bytes, cookie: firstProbe.cookie, source: firstProbe.source,
                                   sourcePort: firstProbe.sourcePort, destination: firstProbe.destination,
                                   destinationPort: firstProbe.destinationPort, attempt: sends)
        var echo = firstProbe
        echo.answersChallenge = true
        return echo
    }

    /// Advances to `now`: a retransmission (same bytes, same cookie), a timeout, or nothing yet.
    mutating func step(now: NIODeadline) -> Step? {
        guard nextEvent <= now else { return nil }
        switch state {
        case .awaitingRetransmit:
            sends += 1
            state = Self.state(afterSend: sends, waits: waits, now: now)
            return .retransmit(firstProbe.attempt(sends))
        case .awaitingLastAnswer:
            return .timedOut
        }
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
