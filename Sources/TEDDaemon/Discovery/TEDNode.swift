import Logging
import CoreMetrics
import NIOConcurrencyHelpers
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
/// All engine state lives on the socket's event loop; these methods hop there.
public final class TEDNode: Sendable {
    public struct Roles: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let initiator = Roles(rawValue: 1)
        public static let responder = Roles(rawValue: 2)
        public static let both: Roles = [.initiator, .responder]
    }

    public let channel: any Channel
    public let metrics: MetricsRegistry
    private let core: NIOLoopBound<DiscoveryCore>
    private let stopping = NIOLockedValueBox(false)
    private let injected = Atomic<Int>(0)
    private let injectDropped: Counter
    private let capture: PcapCapture?

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
        // Bound here, without SO_REUSEADDR, and written by the core (see DiscoveryCore).
        let fd = try UDPSocket.bind(endpoint.address, port: endpoint.port, sendBuffer: Self.sendBuffer)
        // Vector reads: up to `vectorRead` datagrams per recvmmsg, each in its own 4352-byte
        // slice of one buffer (NIO divides the buffer's capacity by the count).
        let channel = try await DatagramBootstrap(group: group.next())
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelOption(.datagramVectorReadMessageCount, value: Self.vectorRead)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4352 * Self.vectorRead))
            .withBoundSocket(fd).get()
        let boundPort = UInt16(exactly: channel.localAddress?.port ?? 0) ?? 0
        let identity = Identity(address: configuration.identity,
                                port: advertiseBoundPort ? boundPort : configuration.advertisePort)
        var rng = SystemRandomNumberGenerator()
        let responderSettings = configuration.responderSettings(using: &rng)
        let tedMetrics = TEDMetrics(registry: metrics)
        let lookup = CompiledPolicy(configuration.policy)
        let core = try await channel.eventLoop.submit {
            let core = DiscoveryCore(
                socket: (fd, endpoint.address.family),
                initiator: roles.contains(.initiator)
                    ? Initiator(policy: lookup, identity: identity, settings: configuration.discoverySettings) : nil,
                responder: roles.contains(.responder)
                    ? Responder(policy: configuration.policy, lookup: lookup, identity: identity, settings: responderSettings) : nil,
                metrics: tedMetrics, logger: logger, events: events, probeSender: probeSender,
                capture: capture)
            try channel.pipeline.syncOperations.addHandler(DiscoveryChannelHandler(core: core))
            return NIOLoopBound(core, eventLoop: channel.eventLoop)
        }.get()
        return TEDNode(channel: channel, metrics: metrics, core: core, capture: capture)
    }

    private init(channel: any Channel, metrics: MetricsRegistry, core: NIOLoopBound<DiscoveryCore>,
                 capture: PcapCapture?) {
        self.channel = channel
        self.metrics = metrics
        self.core = core
        self.capture = capture
        self.injectDropped = Counter(label: "ted_intercepted_dropped_total", factory: metrics)
    }

    /// Datagrams read per system call.
    static let vectorRead = 16

    /// The TED socket's send buffer: replies to identities that never resolve (no ARP
    /// answer) hold buffer space for seconds; a large buffer keeps answering meanwhile.
    static let sendBuffer: Int32 = 4 << 20

    /// Returns when the TED socket closes: at `stop`, or when the kernel reports an error
    /// that NIO treats as fatal. Then `lostReason` is non-nil unless ted stopped it.
    public func closed() async -> String? {
        try? await channel.closeFuture.get()
        if stopping.withLockedValue({ $0 }) { return nil }
        let core = self.core
        let error = try? await channel.eventLoop.submit { core.value.lastError }.get()
        return error.map { "\($0)" } ?? "closed"
    }

    /// The bound port (useful when bound to port 0).
    public var port: UInt16 { UInt16(exactly: channel.localAddress?.port ?? 0) ?? 0 }

    /// Discovers the responder for P. `explicit` bypasses the caches (`ted probe`); `target`
    /// sends the probe to that address and port instead of P's destination.
    public func discover(_ packet: Packet, to target: (address: IPAddress, port: UInt16)? = nil,
                         explicit: Bool = false) async -> DiscoveryOutcome {
        let core = self.core
        let promise = channel.eventLoop.makePromise(of: DiscoveryOutcome.self)
        channel.eventLoop.execute {
            core.value.request(packet, target: target, explicit: explicit, promise: promise)
        }
        return (try? await promise.futureResult.get()) ?? .cancelled
    }

    /// Hands P to the initiator without waiting (the data plane's ACQUIRE path); `target`
    /// as in `discover`.
    public func trigger(_ packet: Packet, to target: (address: IPAddress, port: UInt16)? = nil) {
        let core = self.core
        channel.eventLoop.execute { core.value.request(packet, target: target, explicit: false, promise: nil) }
    }

    /// Intercepted datagrams waiting for the event loop at most; past it they are dropped
    /// and counted, so a flood at an intercepted destination cannot grow memory.
    static let maxInjected = 1024

    /// A datagram received elsewhere (the intercepting transparent socket), handled as if
    /// it had arrived on the TED socket; replies leave through the TED socket. `unanswered`
    /// runs (on the event loop) when it is a probe this gateway does not answer.
    public func inject(_ datagram: ByteBuffer, from address: IPAddress, port: UInt16,
                       unanswered: (@Sendable () -> Void)? = nil) {
        guard injected.add(1, ordering: .relaxed).newValue <= Self.maxInjected else {
            injected.subtract(1, ordering: .relaxed)
            injectDropped.increment()
            return
        }
        let core = self.core
        let source = address.socketAddress(port: port)
        channel.eventLoop.execute {
            self.injected.subtract(1, ordering: .relaxed)
            core.value.datagram(datagram, from: source, unanswered: unanswered)
            core.value.readComplete()
        }
    }

    /// Forgets cached discoveries of a peer (its tunnel went down).
    public func forget(peer: IPAddress) {
        let core = self.core
        channel.eventLoop.execute { core.value.forget(peer: peer) }
    }

    /// Forgets cached discoveries whose intersection overlaps `proxy` (its tunnel went down).
    public func forget(intersection proxy: Proxy) {
        let core = self.core
        channel.eventLoop.execute { core.value.forget(intersection: proxy) }
    }

    /// IKE did not prove what `peer` claimed for `intersection`: see `Initiator.refute`.
    public func refute(peer: IPAddress, intersection proxy: Proxy) {
        let core = self.core
        channel.eventLoop.execute { core.value.refute(peer: peer, intersection: proxy) }
    }

    /// The engines' state for `ted status`.
    public func snapshot() async -> (initiator: InitiatorSnapshot?, responder: ResponderCounters?) {
        let core = self.core
        return (try? await channel.eventLoop.submit { (core.value.initiatorSnapshot, core.value.responderCounters) }.get())
            ?? (nil, nil)
    }

    /// Closes the socket; waiting requests end as `.cancelled`; the capture file gets
    /// every record queued before.
    public func stop() async {
        stopping.withLockedValue { $0 = true }
        try? await channel.close()
        capture?.close()
    }
}
