import Logging
import NIOCore
import TEDEngine
import TEDLinux
import TEDModel
import TEDWire

/// Callbacks for what discovery learns (the IKE hand-off, logs elsewhere). Run on the event loop.
public struct DiscoveryEvents: Sendable {
    public var discovered: @Sendable (Discovery) -> Void
    public var failed: @Sendable (Failure) -> Void

    public init(discovered: @escaping @Sendable (Discovery) -> Void = { _ in },
                failed: @escaping @Sendable (Failure) -> Void = { _ in }) {
        self.discovered = discovered
        self.failed = failed
    }
}

/// Sends a probe somewhere other than the TED socket (e.g. a transparent socket with P's source).
public typealias ProbeSender = @Sendable (OutgoingProbe) -> Bool

/// The engines, behind the node's lock (`TEDNode`): whoever holds it (the socket's reader
/// thread, the data plane's threads, a control request, the timer) feeds the core.
///
/// The thin edge of STYLE.md: datagrams and requests go in, the engines' actions come
/// out as writes, waiter completions, metrics and events. Events and completions are not
/// run here but handed back (`takeEvents`) to run once the lock is released, so a callback
/// may call the node again. Sendable only as the value of that lock: nothing touches it outside.
final class DiscoveryCore: @unchecked Sendable {
    private var initiator: Initiator?
    private var responder: Responder?
    /// Which engines there are, fixed at start: testing the optionals above would copy them.
    private let hasInitiator: Bool
    private let hasResponder: Bool
    /// Whom the responder answered lately: who is starting IKE towards this gateway now.
    private var initiationOrder = InitiationOrder()
    private let metrics: TEDMetrics
    private let logger: Logger
    private let events: DiscoveryEvents
    private let probeSender: ProbeSender?
    private let capture: PcapCapture?
    private var rng = SystemRandomNumberGenerator()
    /// Requests waiting on a discovery, by the packet the engine's discovery started for
    /// (the engine owns the discoveries; this is only who to answer).
    private var waiters: [Packet: [EventLoopPromise<DiscoveryOutcome>]] = [:]
    /// Discovery events and answers to waiting requests, to run once the lock is released.
    private var pendingEvents: [@Sendable () -> Void] = []
    /// Arms a timer that calls `timerFired` (under the lock) at a deadline; set by the node.
    var scheduleTick: ((NIODeadline) -> Scheduled<Void>)?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// The TED socket, written here directly: a send error must never close it, and a full
    /// socket buffer drops replies instead of queueing them.
    private let socket: (fd: Int32, family: IPAddress.Family)
    /// Where the socket is bound, for the capture.
    private let local: (address: IPAddress, port: UInt16)
    /// Whether the socket is still ted's: after `close` nothing is sent or started.
    private(set) var isOpen = true
    /// Datagrams written since the last flush: flushed after each read, or every
    /// `flushEvery` datagrams so the first answer of a long batch does not wait for the last.
    private var outgoing = UDPSocket.SendBatch()
    private let flushEvery = 16
    /// A received datagram's bytes, copied into storage kept from one datagram to the next.
    private var received = ByteBufferAllocator().buffer(capacity: UDPSocket.ReceiveBatch.slotSize)
    private let sendErrorLog = LogLimiter()
    /// What happened to datagrams at the socket (the engines count the rest).
    private var socketCounters = SocketCounters()
    /// Tunnels up, as the hand-off last told.
    private var tunnels = 0
    /// Reads the interception sockets' overflow count (the data plane sets it).
    var interceptOverflows: (@Sendable () -> Int)?
    /// Challenges are counted each; the first toward an identity in a minute is also logged,
    /// so that an operator sees who is being challenged without a line per probe, and at
    /// most 16 such lines a minute in all, whatever identities a forged flood names.
    private let challengeLog = LogLimiter(interval: .seconds(60), linesPerInterval: 16)

    init(socket: (fd: Int32, family: IPAddress.Family), local: (address: IPAddress, port: UInt16),
         initiator: Initiator?, responder: Responder?,
         metrics: TEDMetrics, logger: Logger, events: DiscoveryEvents, probeSender: ProbeSender?,
         capture: PcapCapture? = nil) {
        self.socket = socket
        self.local = local
        self.capture = capture
        self.initiator = initiator
        self.responder = responder
        hasInitiator = initiator != nil
        hasResponder = responder != nil
        self.metrics = metrics
        self.logger = logger
        self.events = events
        self.probeSender = probeSender
    }

    /// The socket is no longer ted's: waiting requests end as `.cancelled`.
    func close() {
        isOpen = false
        timer?.cancel()
        timer = nil
        outgoing = UDPSocket.SendBatch()
        for promise in waiters.values.joined() { answer(promise, .cancelled) }
        waiters = [:]
    }

    /// Events to run now that the lock is released.
    func takeEvents() -> [@Sendable () -> Void] {
        guard !pendingEvents.isEmpty else { return [] }
        defer { pendingEvents = [] }
        return pendingEvents
    }

    // MARK: Inputs

    /// The datagrams of one read on the TED socket, then what they made the engines write.
    func received(_ batch: UDPSocket.ReceiveBatch) {
        socketCounters.receiveOverflows = Int(batch.overflows)
        for index in 0..<batch.count {
            let (bytes, source, port) = batch.datagram(index)
            guard let source else { continue }
            received.clear()
            received.writeBytes(bytes)
            _ = datagram(received, from: source, port: port)
        }
        flush()
    }

    /// A datagram on the TED socket: probes go to the responder, responses and challenges
    /// (exchange 242) to the initiator.
    /// Returns true for a probe the responder drops for a reason that lets an intercepted
    /// probe go on (`DropReason.passesOn`).
    func datagram(_ data: ByteBuffer, from address: IPAddress, port: UInt16) -> Bool {
        guard isOpen else { return false }
        capture?.record(data, from: address, port: port, to: local.address, port: local.port)
        let exchange = data.getInteger(at: data.readerIndex + ISAKMP.exchangeTypeOffset, as: UInt8.self)
            .flatMap(ISAKMP.Exchange.init(rawValue:))
        if exchange == .response || exchange == .challenge, hasInitiator {
            apply(initiator!.received(data, from: address, port: port, now: .now()))
        } else if hasResponder {
            let action = responder!.received(data, from: address, port: port, now: .now())
            switch action {
            case .reply(let bytes, let to, let toPort, let kind):
                if kind != .challenge {
                    // Only a gateway that also initiates ever asks who starts IKE.
                    if hasInitiator { initiationOrder.answered(to, proven: kind == .provenAnswer, now: .now()) }
                } else if challengeLog.allow("\(to)") {
                    logger.info("challenged a rate-limited probe (first challenge toward this identity in a minute)",
                                metadata: ["ted.identity": "\(to)", "ted.source": "\(address)"])
                }
                write(bytes, to: to, port: toPort)
            case .drop(let reason):
                if case .rejected(let why) = reason {
                    logger.debug("rejected datagram", metadata: ["ted.source": "\(address)", "ted.reason": "\(why.rawValue)"])
                }
                return reason.passesOn
            }
        } else if hasInitiator {
            apply(initiator!.received(data, from: address, port: port, now: .now()))
        }
        return false
    }

    /// Whether the IKE SA with `peer` is better left to the peer for now (`InitiationOrder`).
    func shouldWaitForIKE(from peer: IPAddress, own: IPAddress, probedAgo: TimeAmount) -> Bool {
        let now = NIODeadline.now()
        return initiationOrder.shouldWait(for: peer, own: own, probed: now - probedAgo, now: now)
    }

    /// Sends what was written since the last flush.
    func flush() {
        guard !outgoing.isEmpty, isOpen else { return }
        outgoing.send(on: socket.fd, socketFamily: socket.family) { address, code in sendFailed(code, to: address) }
    }

    /// A read on the TED socket failed; the socket stays open.
    func receiveFailed(_ code: Int32) {
        let name = UDPSocket.errnoName(code)
        socketCounters.receiveErrors[name, default: 0] += 1
        if sendErrorLog.allow("receive-\(name)") {
            logger.warning("receive failed; the socket stays open", metadata: ["ted.errno": "\(name)"])
        }
    }

    /// Counted per errno; logged at most once a second per errno.
    private func sendFailed(_ code: Int32, to address: IPAddress) {
        let name = UDPSocket.errnoName(code)
        socketCounters.sendErrors[name, default: 0] += 1
        if sendErrorLog.allow(name) {
            logger.warning("send failed; the socket stays open", metadata: ["ted.errno": "\(name)", "ted.destination": "\(address)"])
        }
    }

    /// A packet that needs a tunnel (from the data plane, the control socket or `ted probe`).
    func request(_ packet: Packet, target: (address: IPAddress, port: UInt16)?, explicit: Bool,
                 promise: EventLoopPromise<DiscoveryOutcome>?) {
        guard hasInitiator, isOpen else {
            if let promise { answer(promise, hasInitiator ? .cancelled : .notProtected(packet)) }
            return
        }
        let now = NIODeadline.now()
        let action = explicit ? initiator!.probe(packet, to: target, now: now, rng: &rng)
                              : initiator!.packet(packet, to: target, now: now, rng: &rng)
        if let promise {
            switch action {
            case .send:
                waiters[packet, default: []].append(promise)
            case .joined(_, _, let discovering):
                waiters[discovering, default: []].append(promise)
            case .cached(let discovery): answer(promise, .discovered(discovery, cached: true))
            case .failedCached(_, let failure, _): answer(promise, .failed(failure, cached: true))
            case .failed(let failure): answer(promise, .failed(failure, cached: false))
            case .notProtected(let p): answer(promise, .notProtected(p))
            case .discovered, .rejected, .ignored:
                // Answers to a datagram, never to a packet.
                answer(promise, .cancelled)
            }
        }
        apply(action)
    }

    /// Which of `packets` the initiator would answer from its failure cache
    /// (`Initiator.knownFailure(of:now:)`).
    func knownToFail(_ packets: [Packet]) -> Set<Packet> {
        guard hasInitiator, isOpen, !packets.isEmpty else { return [] }
        let now = NIODeadline.now()
        return Set(packets.filter { initiator!.knownFailure(of: $0, now: now) != nil })
    }

    func forget(peer: IPAddress) { _ = initiator?.forget(peer: peer) }
    /// The hand-off's count of tunnels up (`ted_tunnels`).
    func tunnelsUp(_ count: Int) { tunnels = count }

    /// Every count `ted status` and the metrics show, taken together under the lock.
    var counts: DiscoveryCounts {
        var socket = socketCounters
        socket.interceptOverflows = interceptOverflows?() ?? 0
        return DiscoveryCounts(initiator: initiator?.counters, cacheEntries: initiator?.cacheCount ?? 0,
                               pending: initiator?.pendingCount ?? 0, responder: responder?.counters, socket: socket,
                               tunnels: tunnels)
    }
    func tunnelSetUp(after duration: TimeAmount, carried: Bool) {
        (carried ? metrics.setupCarried : metrics.setupInitiated).recordNanoseconds(duration.nanoseconds)
    }
    func update(peerCheck: PeerAddressCheck) {
        initiator?.update(peerCheck: peerCheck)
        responder?.update(peerCheck: peerCheck)
    }
    func forget(intersection: Proxy) { _ = initiator?.forget(intersection: intersection) }
    func refute(peer: IPAddress, intersection: Proxy) {
        _ = initiator?.refute(peer: peer, intersection: intersection, now: .now())
        rescheduleTimer()
    }

    /// The initiator's timer is due (a retransmission, a timeout, an expiry).
    func timerFired() {
        timer = nil
        timerDeadline = nil
        guard isOpen, hasInitiator else { return }
        apply(initiator!.tick(now: .now()))
    }

    var initiatorSnapshot: InitiatorSnapshot? { initiator?.snapshot }
    var responderCounters: ResponderCounters? { responder?.counters }

    // MARK: Actions

    /// The one action of a packet or a datagram.
    private func apply(_ action: InitiatorAction) {
        perform(action)
        flush()
        // A response ignored or rejected changed no deadline: a flood of forged responses
        // costs a decode and a cookie lookup each, not a scan of every table for the next one.
        if action.changesDeadlines { rescheduleTimer() }
    }

    /// The actions of a tick.
    private func apply(_ actions: [InitiatorAction]) {
        actions.forEach(perform)
        flush()
        rescheduleTimer()
    }

    private func perform(_ action: InitiatorAction) {
        switch action {
        case .send(let probe):
            if probeSender?(probe) != true {
                write(probe.bytes, to: probe.destination, port: probe.destinationPort)
            }
            logger.debug("probe sent", metadata: [
                "ted.flow": "\(probe.source) -> \(probe.destination)", "ted.attempt": "\(probe.attempt)",
            ])
        case .discovered(let discovery):
            metrics.discoverySeconds.recordNanoseconds(discovery.rtt.nanoseconds)
            logger.info("discovered", metadata: [
                "ted.packet": "\(discovery.packet)", "ted.peer": "\(discovery.peer)",
                "ted.intersection": "\(discovery.intersection)",
                "ted.rtt_ms": "\(Double(discovery.rtt.nanoseconds) / 1e6)",
            ])
            finish(discovery.packet, .discovered(discovery, cached: false))
            let discovered = events.discovered
            pendingEvents.append { discovered(discovery) }
        case .failed(let failure):
            logger.info("discovery failed", metadata: [
                "ted.packet": "\(failure.packet)", "ted.reason": "\(failure.reason)",
                "ted.destination": "\(failure.destination)", "ted.attempts": "\(failure.attempts)",
            ])
            finish(failure.packet, .failed(failure, cached: false))
            let failed = events.failed
            pendingEvents.append { failed(failure) }
        case .rejected, .ignored:
            break
        case .cached(let discovery):
            // A packet of a known intersection: the hand-off finds its child up, or (a
            // non-contiguous intersection's other part) builds the one that holds it.
            let discovered = events.discovered
            pendingEvents.append { discovered(discovery) }
        case .failedCached, .joined, .notProtected:
            break
        }
    }

    /// A waiting request's answer, given once the lock is released like the events: a
    /// callback on its future may call the node again.
    private func answer(_ promise: EventLoopPromise<DiscoveryOutcome>, _ outcome: DiscoveryOutcome) {
        pendingEvents.append { promise.succeed(outcome) }
    }

    private func finish(_ packet: Packet, _ outcome: DiscoveryOutcome) {
        for promise in waiters.removeValue(forKey: packet) ?? [] { answer(promise, outcome) }
    }

    private func write(_ bytes: ByteBuffer, to address: IPAddress, port: UInt16) {
        guard isOpen else { return }
        if socket.family == .v4, address.family == .v6 {
            socketCounters.unsendable += 1
            if sendErrorLog.allow("v6-on-v4") {
                logger.warning("cannot send to an IPv6 address from an IPv4 socket; listen on [::] for both",
                               metadata: ["ted.destination": "\(address)"])
            }
            return
        }
        capture?.record(bytes, from: local.address, port: local.port, to: address, port: port)
        bytes.withUnsafeReadableBytes { outgoing.append($0, to: address, port: port) }
        if outgoing.count >= flushEvery { flush() }
    }

    private func rescheduleTimer() {
        let deadline = isOpen ? initiator?.nextDeadline : nil
        if timerDeadline == deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = deadline.flatMap { scheduleTick?($0) }
    }
}

extension InitiatorAction {
    /// Whether the initiator's tables (and so its next deadline) may have changed.
    var changesDeadlines: Bool {
        switch self {
        case .ignored(.cookieLearned): true
        case .ignored, .rejected, .notProtected: false
        default: true
        }
    }
}
