import NIOCore
import TEDModel

/// The first packets of flows that wait for their tunnel: held while discovery and IKE
/// run, instead of dropped (patent block 208), then released into the tunnel or dropped.
///
/// Bounded per flow and in total, in packets and bytes, and in time: a packet beyond a
/// bound is dropped at once, one older than `Limits.time` when `expire` runs. Holds only
/// the packets' kernel ids and summaries; the packets stay in the kernel until their
/// verdict. Pure: time comes in as an argument.
public struct HeldPackets: Sendable {
    public struct Limits: Hashable, Sendable {
        public var perFlow: Int
        public var packets: Int
        public var bytes: Int
        public var time: TimeAmount

        public init(perFlow: Int = 4, packets: Int = 256, bytes: Int = 1 << 20, time: TimeAmount = .seconds(3)) {
            self.perFlow = perFlow
            self.packets = packets
            self.bytes = bytes
            self.time = time
        }
    }

    /// Why a packet was dropped instead of held or released.
    public enum DropReason: String, CaseIterable, Hashable, Sendable {
        /// Its flow already holds `perFlow` packets.
        case flowFull = "flow_full"
        /// `packets` or `bytes` are held in all.
        case full
        /// No tunnel took it within `time`.
        case expired
        /// Its IP header could not be read.
        case unusable
        /// ted stopped (the kernel drops what it still held).
        case stopped
    }

    public enum Decision: Hashable, Sendable {
        case hold
        case drop(DropReason)
    }

    private struct Held: Sendable {
        let id: UInt32
        let length: Int
        let arrived: NIODeadline
    }

    public let limits: Limits
    private var flows: [Packet: [Held]] = [:]
    public private(set) var count = 0
    public private(set) var bytes = 0

    public init(limits: Limits) {
        self.limits = limits
    }

    public var flowCount: Int { flows.count }

    /// A packet arrived in the queue.
    public mutating func arrive(id: UInt32, packet: Packet, length: Int, now: NIODeadline) -> Decision {
        guard flows[packet, default: []].count < limits.perFlow else { return .drop(.flowFull) }
        guard count < limits.packets, bytes + length <= limits.bytes else { return .drop(.full) }
        flows[packet, default: []].append(Held(id: id, length: length, arrived: now))
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
        count -= taken.count
        bytes -= taken.reduce(0) { $0 + $1.length }
        return taken.map(\.id)
    }
}
