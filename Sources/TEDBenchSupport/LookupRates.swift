import TEDModel

/// What one thread's lookups over a trace answered, and how fast.
public struct LookupRates: Sendable {
    /// The 0-based position each packet matched (-1: none).
    public let answers: [Int]
    /// Lookups per second of wall-clock time.
    public let perSecond: Double
    /// Lookups per second of this thread's CPU time (what one core does when the machine is shared).
    public let perCPUSecond: Double

    /// Times `lookup` over `packets`, one at a time.
    ///
    /// Inlinable so that the timed loop is specialized in the caller's module for its
    /// collection and its lookup: compiled here, the loop walked the trace through the
    /// generic `Sequence` witnesses and called the lookup as an opaque closure, which cost a
    /// fifth of the compiled classifier's rate at 100k entries (issue 34).
    @inlinable
    public init(_ packets: some Collection<Packet>, _ lookup: (Packet) -> Int) {
        var answers: [Int] = []
        answers.reserveCapacity(packets.count)
        let start = monotonicNanos(), startCPU = threadCPUNanos()
        for packet in packets {
            answers.append(lookup(packet))
        }
        let wall = max(seconds(since: start), 1e-9), cpu = max(Double(threadCPUNanos() - startCPU) / 1e9, 1e-9)
        self.answers = answers
        perSecond = Double(packets.count) / wall
        perCPUSecond = Double(packets.count) / cpu
    }

    /// Through `PolicyLookup.firstMatch`, which also copies the matching `PolicyRule` out of the policy.
    @inlinable
    public init(_ packets: some Collection<Packet>, firstMatchOf lookup: some PolicyLookup) {
        self.init(packets) { lookup.firstMatch($0, as: .responder).map { $0.index - 1 } ?? -1 }
    }
}
