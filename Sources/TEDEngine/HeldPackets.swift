import NIOCore
import TEDModel

/// The first packets of flows that wait for their tunnel: held while discovery and IKE
/// run, instead of dropped (patent block 208), then released into the tunnel or dropped.
///
/// Bounded per flow, per inside source prefix (/24 IPv4, /64 IPv6) and in total, in
/// packets and bytes, and in time: a packet beyond a bound is dropped at once, one older
/// than `Limits.time` when `expire` runs. The bound per source keeps one host (or one
/// neighbour spoofing it) that sends new flows from taking the space every other source's
/// first packets need. A packet dropped over a bound still asks for its discovery
/// (`Decision.startsDiscovery`): a full hold costs a flow its first packets, never its
/// tunnel. A flow whose discovery is known to fail is not held at all. Holds only the
/// packets' kernel ids and summaries; the packets stay in the kernel until their verdict.
/// Pure: time, and what the initiator knows of a flow, come in as arguments.
public struct HeldPackets: Sendable {
    public struct Limits: Hashable, Sendable {
        public var perFlow: Int
        /// Packets held in all for the sources of one /24 (IPv4) or /64 (IPv6).
        public var perSource: Int
        public var packets: Int
        public var bytes: Int
        public var time: TimeAmount

        public init(perFlow: Int = 4, perSource: Int = 32, packets: Int = 256, bytes: Int = 1 << 20,
                    time: TimeAmount = .seconds(3)) {
            self.perFlow = perFlow
            self.perSource = perSource
            self.packets = packets
            self.bytes = bytes
            self.time = time
        }

        // Valid ranges: the configuration's `hold` section defaults to `Limits()` and
        // refuses values outside these.
        public static let validPerFlow = 1...64
        public static let validPerSource = 1...65_536
        public static let validPackets = 1...65_536
        public static let validBytes = 1_500...(256 << 20)
        public static let validTime = TimeAmount.milliseconds(10)...TimeAmount.seconds(60)
    }

    /// Why a packet was dropped instead of held or released.
    public enum DropReason: String, CaseIterable, Hashable, Sendable {
        /// Its flow already holds `perFlow` packets.
        case flowFull = "flow_full"
        /// Its source's /24 (/64) already holds `perSource` packets.
        case sourceFull = "source_full"
        /// `packets` or `bytes` are held in all.
        case full
        /// The initiator answers its flow from the failure cache: no tunnel will take it.
        case knownFailing = "known_failing"
        /// No tunnel took it within `time`.
        case expired
        /// Its IP header could not be read.
        case unusable
        /// ted stopped (the kernel drops what it still held).
        case stopped

        /// Whether the dropped packet still asks for its flow's discovery: one over a bound
        /// does (the flow's tunnel must not wait for room in the hold; the initiator joins a
        /// discovery already pending, so a flood of such packets sends one probe per
        /// destination, not one per packet). One of a flow known to fail does not (the
        /// initiator would only answer from its failure cache again), nor one dropped on
        /// expiry, unreadable or at stop.
        public var startsDiscovery: Bool {
            switch self {
            case .flowFull, .sourceFull, .full: true
            case .knownFailing, .expired, .unusable, .stopped: false
            }
        }
    }

    public enum Decision: Hashable, Sendable {
        case hold
        case drop(DropReason)

        /// Whether the driver asks for the packet's discovery: every held packet, and a
        /// packet dropped over a bound (`DropReason.startsDiscovery`).
        public var startsDiscovery: Bool {
            switch self {
            case .hold: true
            case .drop(let reason): reason.startsDiscovery
            }
        }
    }

    private struct Held: Sendable {
        let id: UInt32
        let length: Int
        let arrived: NIODeadline
    }

    public let limits: Limits
    private var flows: [Packet: [Held]] = [:]
    /// Packets held per source prefix (`source(of:)`); a prefix holding none is absent.
    private var sources: [IPAddress: Int] = [:]
    public private(set) var count = 0
    public private(set) var bytes = 0

    public init(limits: Limits) {
        self.limits = limits
    }

    public var flowCount: Int { flows.count }

    /// Source prefixes holding packets now.
    public var sourceCount: Int { sources.count }

    /// A packet arrived in the queue; `knownFailing`: the initiator answers its flow from
    /// the failure cache (`Initiator.knownFailure(of:now:)`).
    public mutating func arrive(id: UInt32, packet: Packet, length: Int, knownFailing: Bool = false,
                                now: NIODeadline) -> Decision {
        guard !knownFailing else { return .drop(.knownFailing) }
        guard flows[packet, default: []].count < limits.perFlow else { return .drop(.flowFull) }
        let source = Self.source(of: packet)
        guard sources[source, default: 0] < limits.perSource else { return .drop(.sourceFull) }
        guard count < limits.packets, bytes + length <= limits.bytes else { return .drop(.full) }
        flows[packet, default: []].append(Held(id: id, length: length, arrived: now))
        sources[source, default: 0] += 1
        count += 1
        bytes += length
        return .hold
    }

    /// Takes out the packets of every flow `covered` accepts, each flow's in arrival order.
    public mutating func release(where covered: (Packet) -> Bool) -> [UInt32] {
        let released = flows.keys.filter(covered)
        return released.flatMap { take(flow: $0, where: { _ in true }) }
    }

    /// Takes out the packets held for longer than `limits.time`.
    public mutating func expire(now: NIODeadline) -> [UInt32] {
        let oldest = now - limits.time
        return Array(flows.keys).flatMap { take(flow: $0, where: { $0.arrived <= oldest }) }
    }

    /// Takes out every packet (ted stops holding).
    public mutating func removeAll() -> [UInt32] {
        Array(flows.keys).flatMap { take(flow: $0, where: { _ in true }) }
    }

    /// The held packets of the flows in arrival order of each flow's first packet, with their count.
    public var summary: [(packet: Packet, count: Int)] {
        flows.sorted { $0.value[0].arrived < $1.value[0].arrived }.map { ($0.key, $0.value.count) }
    }

    private mutating func take(flow: Packet, where chosen: (Held) -> Bool) -> [UInt32] {
        guard let held = flows[flow] else { return [] }
        let taken = held.filter(chosen)
        guard !taken.isEmpty else { return [] }
        let kept = held.filter { !chosen($0) }
        flows[flow] = kept.isEmpty ? nil : kept
        let source = Self.source(of: flow)
        let left = sources[source, default: 0] - taken.count
        sources[source] = left > 0 ? left : nil
        count -= taken.count
        bytes -= taken.reduce(0) { $0 + $1.length }
        return taken.map(\.id)
    }

    /// The prefix a packet's source is bounded under, counted as the responder's rate
    /// limits count sources.
    private static func source(of packet: Packet) -> IPAddress {
        ProbeRateLimiter.prefix(of: packet.source)
    }
}
