import Logging
import CoreMetrics
import Synchronization
import NIOCore
import NIOPosix
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel
import TEDWire

/// One TED endpoint on a UDP socket: initiator, responder, or both.
///
/// A dedicated thread reads the socket (`UDPReader`, one `recvmmsg` per wake-up) and
/// feeds each batch to the engines; the other inputs (the data plane's triggers and
/// intercepted probes, control requests, the initiator's timer) feed them on their own
/// threads. The engines sit behind one lock (`DiscoveryCore`): a batch or a request holds
/// it for microseconds, and no input waits for a hop to another thread.
public final class TEDNode: Sendable {
    public struct Roles: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let initiator = Roles(rawValue: 1)
        public static let responder = Roles(rawValue: 2)
        public static let both: Roles = [.initiator, .responder]
    }

    public let metrics: MetricsRegistry
    /// The bound port (useful when bound to port 0).
    public let port: UInt16
    /// The configuration's policy, compiled once at start for both engines (and for the
    /// hand-off's responder children, so a large policy is not compiled twice).
    public let classifier: CompiledPolicy
    private let fd: Int32
    private let core: Mutex<DiscoveryCore>
    /// Where the initiator's timers run and discovery promises complete.
    private let loop: any EventLoop
    private let reader = Mutex<UDPReader?>(nil)
    /// Completed when the reader ends: nil when ted stopped it, else why the socket was lost.
    private let lost: EventLoopPromise<String?>
    private let stopping = Atomic<Bool>(false)
    private let capture: PcapCapture?
    private let addressWatch = Mutex<OwnAddressWatch?>(nil)

    /// Binds the TED socket at `bind` (default: the configuration's listen endpoint).
    ///
    /// `advertiseBoundPort` puts the port actually bound (e.g. an ephemeral one for
    /// `ted probe`) into the identity payload instead of `advertise-port`.
    public static func start(configuration: Configuration, roles: Roles = .both, bind: Endpoint? = nil,
                             advertiseBoundPort: Bool = false,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             logger: Logger, events: DiscoveryEvents = DiscoveryEvents(),
                             probeSender: ProbeSender? = nil, metrics: MetricsRegistry = MetricsRegistry()) async throws -> TEDNode {
        let endpoint = bind ?? configuration.listen
        let capture = try configuration.capture.map { path throws(CaptureError) in
            try PcapCapture(path: path, maxBytes: configuration.captureMaxBytes)
        }
        // Bound here, without SO_REUSEADDR; read by the node's thread, written by the core.
        let fd = try UDPSocket.bind(endpoint.address, port: endpoint.port, buffer: Self.socketBuffer,
                                    receiveTimeout: Self.receiveTimeout)
        let boundPort: UInt16
        do {
            boundPort = try UDPSocket.localPort(of: fd)
        } catch {
            close(fd)
            throw error
        }
        let identity = Identity(address: configuration.identity,
                                port: advertiseBoundPort ? boundPort : configuration.advertisePort)
        var rng = SystemRandomNumberGenerator()
        let responderSettings = configuration.responderSettings(using: &rng)
        let lookup = CompiledPolicy(configuration.policy)
        let core = DiscoveryCore(
            socket: (fd, endpoint.address.family), local: (endpoint.address, boundPort),
            initiator: roles.contains(.initiator)
                ? Initiator(policy: lookup, identity: identity, settings: configuration.discoverySettings) : nil,
            responder: roles.contains(.responder)
                ? Responder(policy: configuration.policy, lookup: lookup, identity: identity, settings: responderSettings) : nil,
            metrics: TEDMetrics(registry: metrics), logger: logger, events: events, probeSender: probeSender,
            capture: capture)
        let node = TEDNode(fd: fd, port: boundPort, classifier: lookup, core: core, loop: group.next(), metrics: metrics,
                           capture: capture)
        metrics.addSource { [weak node] in node?.counts().prometheusText ?? "" }
        node.startReading()
        node.watchOwnAddresses(configuration)
        return node
    }

    private func watchOwnAddresses(_ configuration: Configuration) {
        let watch = OwnAddressWatch(loop: loop, initial: configuration.peerCheck, read: { configuration.currentPeerCheck }) { [weak self] check in
            self?.withCore { $0.update(peerCheck: check) }
        }
        addressWatch.withLock { $0 = watch }
    }

    private init(fd: Int32, port: UInt16, classifier: CompiledPolicy, core: DiscoveryCore, loop: any EventLoop,
                 metrics: MetricsRegistry, capture: PcapCapture?) {
        self.fd = fd
        self.port = port
        self.classifier = classifier
        self.core = Mutex(core)
        self.loop = loop
        self.lost = loop.makePromise()
        self.metrics = metrics
        self.capture = capture
    }

    private func startReading() {
        let loop = self.loop
        withCore { core in
            core.scheduleTick = { [weak self] deadline in
                loop.scheduleTask(deadline: deadline) { [weak self] in self?.withCore { $0.timerFired() } }
            }
        }
        let lost = self.lost
        reader.withLock { reader in
            reader = UDPReader(
                fd: fd, slots: Self.vectorRead,
                onBatch: { [weak self] batch in self?.withCore { $0.received(batch) } },
                onError: { [weak self] code in self?.withCore { $0.receiveFailed(code) } },
                onEnd: { code in lost.succeed(code.map { "receive failed: \(UDPSocket.errnoName($0))" }) })
        }
    }

    /// Runs `body` on the engines under the lock, then the events and answers it raised
    /// (outside the lock, so their handlers may call the node again).
    @discardableResult
    func withCore<T>(_ body: (DiscoveryCore) -> T) -> T {
        let (result, events) = core.withLock { core in (body(core), core.takeEvents()) }
        for event in events { event() }
        return result
    }

    /// Datagrams read per system call.
    static let vectorRead = 16

    /// The TED socket's buffers: replies to identities that never resolve (no ARP answer)
    /// hold send buffer space for seconds, and a burst of probes waits in the receive
    /// buffer while a batch is answered; large buffers keep answering meanwhile.
    static let socketBuffer: Int32 = 4 << 20

    /// How long a read blocks before the reader checks whether it should stop (a stop
    /// also wakes it at once).
    static let receiveTimeout: Int32 = 250

    /// Returns when the TED socket is no longer read: at `stop`, or when the kernel reports
    /// an error that makes it unusable. Then the reason is returned, nil if ted stopped it.
    public func closed() async -> String? {
        let reason = (try? await lost.futureResult.get()) ?? nil
        return stopping.load(ordering: .acquiring) ? nil : reason ?? "closed"
    }

    /// Discovers the responder for P. `explicit` bypasses the caches (`ted probe`); `target`
    /// sends the probe to that address and port instead of P's destination.
    public func discover(_ packet: Packet, to target: (address: IPAddress, port: UInt16)? = nil,
                         explicit: Bool = false) async -> DiscoveryOutcome {
        let promise = loop.makePromise(of: DiscoveryOutcome.self)
        withCore { $0.request(packet, target: target, explicit: explicit, promise: promise) }
        return (try? await promise.futureResult.get()) ?? .cancelled
    }

    /// Hands P to the initiator without waiting (the data plane's ACQUIRE path); `target`
    /// as in `discover`.
    public func trigger(_ packet: Packet, to target: (address: IPAddress, port: UInt16)? = nil) {
        withCore { $0.request(packet, target: target, explicit: false, promise: nil) }
    }

    /// Which of `packets` the initiator answers from its failure cache: their flows are
    /// known to fail, so the held-packet driver drops them at once. Starts nothing.
    public func knownToFail(_ packets: [Packet]) -> Set<Packet> {
        withCore { $0.knownToFail(packets) }
    }

    /// A datagram received elsewhere (the intercepting transparent socket), handled as if
    /// it had arrived on the TED socket; replies leave through the TED socket. `unanswered`
    /// runs (on the caller's thread) when it is a probe this gateway does not answer.
    public func inject(_ datagram: ByteBuffer, from address: IPAddress, port: UInt16,
                       unanswered: (@Sendable () -> Void)? = nil) {
        let passesOn = withCore { core in
            defer { core.flush() }
            return core.datagram(datagram, from: address, port: port)
        }
        if passesOn { unanswered?() }
    }

    /// The data plane's interception sockets: their overflows count with the TED socket's.
    public func countInterceptOverflows(_ read: @escaping @Sendable () -> Int) {
        withCore { $0.interceptOverflows = read }
    }

    /// The hand-off tells how many of its tunnels are up (`ted_tunnels`).
    public func tunnelsUp(_ count: Int) {
        withCore { $0.tunnelsUp(count) }
    }

    /// The hand-off tells how long a tunnel took from its hand-off to up
    /// (`ted_tunnel_setup_seconds`), and whether a child already there carried it.
    public func tunnelSetUp(after duration: TimeAmount, carried: Bool) {
        withCore { $0.tunnelSetUp(after: duration, carried: carried) }
    }

    /// Whether the hand-off should leave the IKE SA with `peer` to the peer for now: this
    /// gateway answered the peer's probe lately (`InitiationOrder`); its own discovery of
    /// the peer sent its first probe `probedAgo`.
    public func shouldWaitForIKE(from peer: IPAddress, own: IPAddress, probedAgo: TimeAmount) -> Bool {
        withCore { $0.shouldWaitForIKE(from: peer, own: own, probedAgo: probedAgo) }
    }

    /// Forgets cached discoveries of a peer (its tunnel went down).
    public func forget(peer: IPAddress) {
        withCore { $0.forget(peer: peer) }
    }

    /// Forgets cached discoveries whose intersection overlaps `proxy` (its tunnel went down).
    public func forget(intersection proxy: Proxy) {
        withCore { $0.forget(intersection: proxy) }
    }

    /// IKE did not prove what `peer` claimed for `intersection`: see `Initiator.refute`.
    public func refute(peer: IPAddress, intersection proxy: Proxy) {
        withCore { $0.refute(peer: peer, intersection: proxy) }
    }

    /// The engines' state for `ted status`.
    public func snapshot() async -> (initiator: InitiatorSnapshot?, responder: ResponderCounters?, socket: SocketCounters) {
        withCore { ($0.initiatorSnapshot, $0.responderCounters, $0.counts.socket) }
    }

    /// Every count, as the metrics show them (`DiscoveryCounts`).
    public func counts() -> DiscoveryCounts {
        withCore { $0.counts }
    }

    /// Stops reading and closes the socket; waiting requests end as `.cancelled`; the
    /// capture file gets every record queued before. Once stopped, nothing is sent.
    public func stop() async {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        reader.withLock { $0 }?.stop()
        addressWatch.withLock { $0 }?.stop()
        withCore { $0.close() }
        close(fd)
        // Usually the reader's end has completed it already; a second completion is ignored.
        lost.succeed(nil)
        capture?.close()
    }
}
