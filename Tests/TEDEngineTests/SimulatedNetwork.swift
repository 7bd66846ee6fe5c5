import TEDTestSupport
import NIOCore
import TEDModel

/// A lossy datagram network in memory: each datagram may be lost, duplicated, and is
/// delayed at random so that datagrams overtake each other.
struct SimulatedNetwork {
    struct Datagram {
        var bytes: ByteBuffer
        var source: IPAddress
        var sourcePort: UInt16
        var destination: IPAddress
        var destinationPort: UInt16
    }

    var loss: Double
    var duplication: Double
    var delay: ClosedRange<Int64>
    private var rng: SeededRNG
    private var queue: [(due: NIODeadline, sequence: Int, datagram: Datagram)] = []
    private var sequence = 0
    private(set) var sent = 0
    private(set) var lost = 0
    private(set) var duplicated = 0

    init(seed: UInt64, loss: Double, duplication: Double, delay: ClosedRange<Int64> = 1...400) {
        self.rng = SeededRNG(seed: seed)
        self.loss = loss
        self.duplication = duplication
        self.delay = delay
    }

    mutating func send(_ datagram: Datagram, now: NIODeadline) {
        sent += 1
        let copies = Double.random(in: 0..<1, using: &rng) < duplication ? 2 : 1
        if copies == 2 { duplicated += 1 }
        for _ in 0..<copies {
            guard Double.random(in: 0..<1, using: &rng) >= loss else {
                lost += 1
                continue
            }
            sequence += 1
            queue.append((now + .milliseconds(Int64.random(in: delay, using: &rng)), sequence, datagram))
        }
    }

    var nextDelivery: NIODeadline? { queue.map(\.due).min() }

    /// The datagrams due by `now`, in delivery order.
    mutating func deliver(until now: NIODeadline) -> [Datagram] {
        let due = queue.filter { $0.due <= now }.sorted { ($0.due, $0.sequence) < ($1.due, $1.sequence) }
        queue.removeAll { $0.due <= now }
        return due.map(\.datagram)
    }
}
