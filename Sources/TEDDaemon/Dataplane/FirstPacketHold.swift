import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel

/// First packets held, not lost: a packet that policy says must be protected and that no
/// tunnel carries is queued in the kernel (`HoldTable`, `PacketQueue`) instead of meeting
/// the traps; it asks for a discovery, and when a child SA whose
/// selectors hold it comes up, it is released into the tunnel. A packet beyond the
/// bounds, or older than `hold.time`, is dropped and counted: never sent in clear. One
/// dropped over a bound still asks for its discovery; one of a flow the initiator knows
/// to fail is dropped at once, without waiting.
///
/// The tunnels that are up are told to the kernel (the table's sets, reference-counted
/// per selector: `ChildReferences`), so their packets never come here.
final class FirstPacketHold: Sendable {
    let table: HoldTable
    private let limits: HeldPackets.Limits
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let errorLog = LogLimiter()

    private struct State {
        var held: HeldPackets
        /// Each held packet's mark, to restore (without ted's bit) on release.
        var marks: [UInt32: UInt32] = [:]
        var queue: PacketQueue?
        var counters: HoldMetrics?
        /// The selectors of the child SAs that are up.
        var tunnels = ChildReferences<TrafficSelector>()
    }

    init(configuration: Configuration, tunnelDevice: String?, logger: Logger) {
        let options = configuration.hold
        table = HoldTable(policy: configuration.policy, probePort: configuration.probePort,
                          tunnelDevice: tunnelDevice, queue: options.queue)
        limits = HeldPackets.Limits(perFlow: options.perFlow, perSource: options.perSource,
                                    packets: options.packets, bytes: options.bytes,
                                    time: configuration.holdTime)
        self.logger = logger
        state = NIOLockedValueBox(State(held: HeldPackets(limits: limits)))
    }

    /// Installs the table before ted reads the queue: meanwhile its packets are dropped.
    func prepare() throws(CommandError) {
        try table.install()
    }

    /// Reads the queue; `knownToFail` tells which packets' flows the initiator answers from
    /// its failure cache, `trigger` asks for a packet's discovery.
    func start(metrics: MetricsRegistry, knownToFail: @escaping @Sendable ([Packet]) -> Set<Packet>,
               trigger: @escaping @Sendable (Packet) -> Void) throws(LinuxError) {
        let counters = HoldMetrics(registry: metrics)
        state.withLockedValue { $0.counters = counters }
        let queue = try PacketQueue(number: table.queue, maxLength: limits.packets)
        // Known before the first packet is read: every packet read gets a verdict.
        state.withLockedValue { $0.queue = queue }
        queue.start(onPackets: { [self] packets in arrived(packets, knownToFail: knownToFail, trigger: trigger) },
                    onTick: { [self] in expire() })
        logger.info("first packets are held", metadata: [
            "ted.queue": "\(table.queue)", "ted.per_flow": "\(limits.perFlow)", "ted.per_source": "\(limits.perSource)",
            "ted.packets": "\(limits.packets)",
            "ted.bytes": "\(limits.bytes)", "ted.time_ms": "\(limits.time.nanoseconds / 1_000_000)"])
    }

    private func arrived(_ packets: [PacketQueue.Queued], knownToFail: @Sendable ([Packet]) -> Set<Packet>,
                         trigger: @Sendable (Packet) -> Void) {
        let now = NIODeadline.now()
        let summaries = packets.map { Packet(ipHeader: $0.header) }
        // Asked before the hold's lock is taken, as `trigger` is after: the node's lock is
        // never taken inside it.
        let failing = knownToFail(summaries.compactMap { $0 })
        let flows: [Packet] = state.withLockedValue { state in
            guard let queue = state.queue else { return [] }
            var flows: [Packet] = []
            for (queued, packet) in zip(packets, summaries) {
                guard let packet else {
                    queue.drop(queued.id)
                    state.counters?.dropped[.unusable]?.increment()
                    continue
                }
                // A tunnel came up after the kernel queued it.
                if state.tunnels.keys.contains(where: { $0.contains(packet) }) {
                    queue.accept(queued.id, mark: queued.mark & ~HoldTable.mark)
                    state.counters?.released.increment()
                    continue
                }
                let decision = state.held.arrive(id: queued.id, packet: packet, length: queued.length,
                                                 knownFailing: failing.contains(packet), now: now)
                switch decision {
                case .hold:
                    state.marks[queued.id] = queued.mark
                    state.counters?.held.increment()
                case .drop(let reason):
                    queue.drop(queued.id)
                    state.counters?.dropped[reason]?.increment()
                }
                // Every held packet asks, and so does one dropped over a bound (the engine
                // joins a pending discovery and answers from its cache, so a flood sends no
                // more probes): a hand-off that failed is tried again by the flow's next
                // packet, as the next ACQUIRE would, and a full hold delays no tunnel.
                if decision.startsDiscovery { flows.append(packet) }
            }
            return flows
        }
        for packet in flows { trigger(packet) }
    }

    private func expire() {
        state.withLockedValue { state in
            let expired = state.held.expire(now: .now())
            guard !expired.isEmpty else { return }
            for id in expired {
                state.queue?.drop(id)
                state.marks[id] = nil
            }
            state.counters?.dropped[.expired]?.increment(by: expired.count)
        }
    }

    /// A child SA is up: its packets go on at once, and the kernel stops sending them here.
    func tunnelUp(_ child: String, selectors: [TrafficSelector]) {
        let added: [TrafficSelector] = state.withLockedValue { state in
            guard !state.tunnels.holds(child) else { return [] }
            if let queue = state.queue {
                let released = state.held.release { packet in selectors.contains { $0.contains(packet) } }
                for id in released {
                    queue.accept(id, mark: (state.marks.removeValue(forKey: id) ?? 0) & ~HoldTable.mark)
                }
                state.counters?.released.increment(by: released.count)
            }
            return state.tunnels.add(child, selectors)
        }
        update(adding: added, removing: [])
    }

    /// A child SA went down: its packets are held again (and start a new discovery).
    func tunnelDown(_ child: String) {
        let removed = state.withLockedValue { $0.tunnels.remove(child) }
        update(adding: [], removing: removed)
    }

    /// A child SA was rekeyed: its successor carries the same traffic.
    func tunnelRekeyed(_ old: String, to new: String) {
        let removed = state.withLockedValue { $0.tunnels.rename(old, to: new) }
        update(adding: [], removing: removed)
    }

    /// ted's view of the child SAs is complete: the sets hold exactly theirs (a tunnel that
    /// went while ted was away leaves the sets).
    func reconciled() {
        let selectors = state.withLockedValue { $0.tunnels.keys }
        do {
            try HoldTable.replaceElements(selectors)
        } catch {
            logger.warning("cannot reset the held-packet table's tunnels", metadata: ["ted.error": "\(error)"])
        }
    }

    private func update(adding: [TrafficSelector], removing: [TrafficSelector]) {
        do {
            try HoldTable.update(adding: adding, removing: removing)
        } catch {
            if errorLog.allow("update") {
                logger.warning("cannot update the held-packet table's tunnels", metadata: ["ted.error": "\(error)"])
            }
        }
    }

    /// Stops reading: the kernel drops what is still held, and drops what comes while no
    /// ted reads (the table stays, like the traps).
    func stop() {
        let queue: PacketQueue? = state.withLockedValue { state in
            defer { state.queue = nil }
            let dropped = state.held.removeAll()
            state.counters?.dropped[.stopped]?.increment(by: dropped.count)
            state.marks = [:]
            return state.queue
        }
        queue?.stop()
    }

    /// Held packets now, per flow (for `ted status`).
    var status: HeldStatus {
        state.withLockedValue { HeldStatus(packets: $0.held.count, bytes: $0.held.bytes, flows: $0.held.summary) }
    }
}
