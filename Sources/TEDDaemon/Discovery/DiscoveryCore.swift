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

/// The engines and their timer, confined to the TED socket's event loop.
///
/// The thin edge of STYLE.md: datagrams and requests go in, the engines' actions come
/// out as writes, timer changes, waiter completions, metrics and events.
final class DiscoveryCore {
    private var initiator: Initiator?
    private var responder: Responder?
    private let metrics: TEDMetrics
    private let logger: Logger
    private let events: DiscoveryEvents
    private let probeSender: ProbeSender?
    private let capture: PcapCapture?
    private var rng = SystemRandomNumberGenerator()
    /// The last error the socket reported, for the log line when it is lost.
    var lastError: (any Error)?
    private var channel: (any Channel)?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Requests waiting on a discovery, by the packet the engine's discovery started for
    /// (the engine owns the discoveries; this is only who to answer).
    private var waiters: [Packet: [EventLoopPromise<DiscoveryOutcome>]] = [:]
    /// The TED socket, written here directly (NIO only reads it): a send error must never
    /// close it, and a full socket buffer drops replies instead of queueing them.
    private let socket: (fd: Int32, family: IPAddress.Family)
    /// Datagrams written since the last flush: flushed at the end of a read burst, or every
    /// `flushEvery` datagrams so the first answer of a long burst does not wait for the last.
    private var outgoing = UDPSocket.SendBatch()
    private let flushEvery = 16
    private let sendErrorLog = LogLimiter()

    init(socket: (fd: Int32, family: IPAddress.Family), initiator: Initiator?, responder: Responder?,
         metrics: TEDMetrics, logger: Logger, events: DiscoveryEvents, probeSender: ProbeSender?,
         capture: PcapCapture? = nil) {
        self.socket = socket
        self.capture = capture
        self.initiator = initiator
        self.responder = responder
        self.metrics = metrics
        self.logger = logger
        self.events = events
        self.probeSender = probeSender
    }

    func attach(_ channel: any Channel) { self.channel = channel }

    func detach() {
        outgoing = UDPSocket.SendBatch()
        timer?.cancel()
        timer = nil
        channel = nil
        for promise in waiters.values.joined() { promise.succeed(.cancelled) }
        waiters = [:]
    }

    // MARK: Inputs

    /// A datagram on the TED socket: probes go to the responder, responses to the initiator.
    /// `unanswered` is called for an intercepted probe the responder drops for a reason
    /// that lets it go on (`DropReason.passesOn`).
    func datagram(_ data: ByteBuffer, from source: SocketAddress, unanswered: (() -> Void)? = nil) {
        guard let address = IPAddress(source), let port = source.port.flatMap({ UInt16(exactly: $0) }) else { return }
        if let capture, let local = localEndpoint {
            capture.record(data, from: address, port: port, to: local.address, port: local.port)
        }
        let exchange = data.getInteger(at: data.readerIndex + 18, as: UInt8.self)
        if exchange == 241, initiator != nil {
            apply(initiator!.received(data, from: address, port: port, now: .now()))
        } else if responder != nil {
            metrics.responderReceived.increment()
            switch responder!.received(data, from: address, port: port, now: .now()) {
            case .reply(let bytes, let to, let toPort):
                metrics.responderReplies.increment()
                write(bytes, to: to, port: toPort)
            case .drop(let reason):
                metrics.dropped(reason)
                if reason.passesOn { unanswered?() }
                if case .rejected(let why) = reason {
                    logger.debug("rejected datagram", metadata: ["ted.source": "\(address)", "ted.reason": "\(why.rawValue)"])
                }
            }
        } else {
            apply(initiator?.received(data, from: address, port: port, now: .now()) ?? [])
        }
    }

    /// Sends what was written during one read burst.
    func readComplete() {
        guard !outgoing.isEmpty, channel != nil else { return }
        outgoing.send(on: socket.fd, socketFamily: socket.family) { address, code in sendFailed(code, to: address) }
    }

    /// Counted per errno; logged at most once a second per errno.
    private func sendFailed(_ code: Int32, to address: IPAddress) {
        let name = UDPSocket.errnoName(code)
        metrics.sendError(name)
        if sendErrorLog.allow(name) {
            logger.warning("send failed; the socket stays open", metadata: ["ted.errno": "\(name)", "ted.destination": "\(address)"])
        }
    }

    /// A packet that needs a tunnel (from the data plane, the control socket or `ted probe`).
    func request(_ packet: Packet, target: (address: IPAddress, port: UInt16)?, explicit: Bool,
                 promise: EventLoopPromise<DiscoveryOutcome>?) {
        guard initiator != nil, channel != nil else {
            promise?.succeed(initiator == nil ? .notProtected(packet) : .cancelled)
            return
        }
        let now = NIODeadline.now()
        let actions = explicit ? initiator!.probe(packet, to: target, now: now, rng: &rng)
                               : initiator!.packet(packet, to: target, now: now, rng: &rng)
        if let promise {
            switch actions.first {
            case .send:
                waiters[packet, default: []].append(promise)
            case .joined(_, _, let discovering):
                waiters[discovering, default: []].append(promise)
            case .cached(let discovery): promise.succeed(.discovered(discovery, cached: true))
            case .failedCached(_, let failure, _): promise.succeed(.failed(failure, cached: true))
            case .failed(let failure): promise.succeed(.failed(failure, cached: false))
            case .notProtected(let p): promise.succeed(.notProtected(p))
            default: promise.succeed(.cancelled)
            }
        }
        apply(actions)
    }

    func forget(peer: IPAddress) { _ = initiator?.forget(peer: peer) }
    func forget(intersection: Proxy) { _ = initiator?.forget(intersection: intersection) }
    func refute(peer: IPAddress, intersection: Proxy) {
        _ = initiator?.refute(peer: peer, intersection: intersection, now: .now())
        rescheduleTimer()
    }

    var initiatorSnapshot: InitiatorSnapshot? { initiator?.snapshot }
    var responderCounters: ResponderCounters? { responder?.counters }

    // MARK: Actions

    private func apply(_ actions: [InitiatorAction]) {
        for action in actions {
            switch action {
            case .send(let probe):
                if probe.attempt == 1 { metrics.probesSent.increment() } else { metrics.probesRetransmitted.increment() }
                if probeSender?(probe) != true {
                    write(probe.bytes, to: probe.destination, port: probe.destinationPort)
                }
                logger.debug("probe sent", metadata: [
                    "ted.flow": "\(probe.source) -> \(probe.destination)", "ted.attempt": "\(probe.attempt)",
                ])
            case .discovered(let discovery):
                metrics.responsesAccepted.increment()
                metrics.discoveries.increment()
                logger.info("discovered", metadata: [
                    "ted.packet": "\(discovery.packet)", "ted.peer": "\(discovery.peer)",
                    "ted.intersection": "\(discovery.intersection)",
                    "ted.rtt_ms": "\(Double(discovery.rtt.nanoseconds) / 1e6)",
                ])
                finish(discovery.packet, .discovered(discovery, cached: false))
                events.discovered(discovery)
            case .failed(let failure):
                if failure.peer != nil { metrics.responsesAccepted.increment() }
                metrics.failed(failure.reason)
                logger.info("discovery failed", metadata: [
                    "ted.packet": "\(failure.packet)", "ted.reason": "\(failure.reason)",
                    "ted.destination": "\(failure.destination)", "ted.attempts": "\(failure.attempts)",
                ])
                finish(failure.packet, .failed(failure, cached: false))
                events.failed(failure)
            case .rejected(let reason):
                if case .undecodable(let why) = reason { metrics.rejected(why) }
            case .ignored(let reason):
                metrics.ignored(reason)
            case .cached(let discovery):
                // A packet of a known intersection: the hand-off finds its child up, or (a
                // non-contiguous intersection's other part) builds the one that holds it.
                events.discovered(discovery)
            case .failedCached, .joined, .notProtected:
                break
            }
        }
        readComplete()
        updateGauges()
        rescheduleTimer()
    }

    private func finish(_ packet: Packet, _ outcome: DiscoveryOutcome) {
        for promise in waiters.removeValue(forKey: packet) ?? [] { promise.succeed(outcome) }
    }

    private func write(_ bytes: ByteBuffer, to address: IPAddress, port: UInt16) {
        guard channel != nil else { return }
        if socket.family == .v4, address.family == .v6 {
            metrics.unsendable.increment()
            if sendErrorLog.allow("v6-on-v4") {
                logger.warning("cannot send to an IPv6 address from an IPv4 socket; listen on [::] for both",
                               metadata: ["ted.destination": "\(address)"])
            }
            return
        }
        if let capture, let local = localEndpoint {
            capture.record(bytes, from: local.address, port: local.port, to: address, port: port)
        }
        bytes.withUnsafeReadableBytes { outgoing.append($0, to: address, port: port) }
        if outgoing.count >= flushEvery { readComplete() }
    }

    private var localEndpoint: (address: IPAddress, port: UInt16)? {
        guard let local = channel?.localAddress, let address = IPAddress(local),
              let port = local.port.flatMap({ UInt16(exactly: $0) }) else { return nil }
        return (address, port)
    }

    private func updateGauges() {
        guard let initiator else { return }
        metrics.cacheEntries.set(initiator.cacheCount)
        metrics.pendingDiscoveries.set(initiator.pendingCount)
    }

    private func rescheduleTimer() {
        guard let channel, let deadline = initiator?.nextDeadline else {
            timer?.cancel()
            timer = nil
            timerDeadline = nil
            return
        }
        if timerDeadline == deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let loop = channel.eventLoop
        let core = NIOLoopBound(self, eventLoop: loop)
        timer = loop.scheduleTask(deadline: deadline) {
            let this = core.value
            this.timerDeadline = nil
            this.timer = nil
            if this.initiator != nil { this.apply(this.initiator!.tick(now: .now())) }
        }
    }
}

/// Feeds the TED socket's datagrams to the core.
final class DiscoveryChannelHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let core: DiscoveryCore

    init(core: DiscoveryCore) { self.core = core }

    func handlerAdded(context: ChannelHandlerContext) { core.attach(context.channel) }
    func handlerRemoved(context: ChannelHandlerContext) { core.detach() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        core.datagram(envelope.data, from: envelope.remoteAddress)
    }

    func channelReadComplete(context: ChannelHandlerContext) { core.readComplete() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket reports ICMP errors (port unreachable) here: not fatal. NIO closes
        // the channel itself on a fatal one; the daemon then exits (TEDNode.closed).
        core.lastError = error
    }
}
