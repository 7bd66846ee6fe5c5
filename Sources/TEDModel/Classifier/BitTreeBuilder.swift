/// Builds a `BitTree` top-down, HyperSplit-style: at each node the test that best halves
/// the entries, counting an entry that can match on both sides in both children.
struct BitTreeBuilder {
    private let rules: [ClassifierRule]
    /// Address bits of the tree's IP version: 32 or 128.
    private let width: Int
    /// A node with at most this many entries becomes a leaf.
    private let leafSize: Int
    private var nodes: [BitTreeNode] = []
    private var leafStarts: [Int32] = [0]
    private var leafPositions: [Int32] = []
    private var depth = 0
    private var care: [Int32]
    private var ones: [Int32]

    /// A split is worth a node when its larger child drops at least this share of the entries;
    /// otherwise a chain of nodes peeling one entry at a time would be slower than a scan.
    private static let minimumGain = 32

    /// Entries counted when choosing a node's address bit (larger nodes count an even sample).
    private let sampleSize: Int

    private struct Split {
        let test: BitTreeNode.Test
        let bit: UInt8
        let threshold: UInt16
        /// Entries in the larger child, then in both children together.
        let larger: Int
        let sum: Int

        func isBetter(than other: Split?) -> Bool {
            guard let other else { return true }
            return (larger, sum) < (other.larger, other.sum)
        }
    }

    private init(rules: [ClassifierRule], width: Int, leafSize: Int, sampleSize: Int) {
        self.rules = rules
        self.sampleSize = sampleSize
        self.width = width
        self.leafSize = leafSize
        care = Array(repeating: 0, count: 2 * width)
        ones = Array(repeating: 0, count: 2 * width)
    }

    /// The tree over `positions` (ascending positions in `rules`).
    static func build<Address>(_ positions: [Int32], rules: [ClassifierRule], leafSize: Int,
                               sampleSize: Int) -> BitTree<Address> {
        var builder = BitTreeBuilder(rules: rules, width: Address.bitWidth, leafSize: leafSize, sampleSize: sampleSize)
        let root = builder.node(positions, depth: 0)
        return BitTree(root: root, nodes: builder.nodes, leafStarts: builder.leafStarts,
                       leafRules: builder.leafPositions.map { LeafRule(rules[Int($0)], position: $0) },
                       first: positions.first.map(Int.init) ?? Int.max,
                       depth: builder.depth,
                       hasPortNodes: builder.nodes.contains { $0.test == .localPort || $0.test == .remotePort })
    }

    private mutating func node(_ positions: [Int32], depth: Int) -> Int32 {
        self.depth = max(self.depth, depth)
        guard positions.count > leafSize, let split = bestSplit(positions) else { return leaf(positions) }
        var zero: [Int32] = [], one: [Int32] = []
        zero.reserveCapacity(split.larger)
        one.reserveCapacity(split.larger)
        for position in positions {
            let (toZero, toOne) = sides(rules[Int(position)], split)
            if toZero { zero.append(position) }
            if toOne { one.append(position) }
        }
        let index = nodes.count
        nodes.append(BitTreeNode(test: split.test, bit: split.bit, threshold: split.threshold, zero: 0, one: 0))
        let zeroChild = node(zero, depth: depth + 1)
        let oneChild = node(one, depth: depth + 1)
        nodes[index] = BitTreeNode(test: split.test, bit: split.bit, threshold: split.threshold,
                                    zero: zeroChild, one: oneChild)
        return Int32(index)
    }

    /// Which children an entry belongs under.
    private func sides(_ rule: ClassifierRule, _ split: Split) -> (zero: Bool, one: Bool) {
        switch split.test {
        case .localBit, .remoteBit:
            let (address, mask) = split.test == .remoteBit
                ? (rule.remoteAddress, rule.remoteMask) : (rule.localAddress, rule.localMask)
            if (mask >> split.bit) & 1 == 0 { return (true, true) }
            return (address >> split.bit) & 1 == 0 ? (true, false) : (false, true)
        case .localPort, .remotePort:
            let (lower, upper) = portRange(rule, remote: split.test == .remotePort)
            return (lower < split.threshold, upper >= split.threshold)
        }
    }

    /// The range a port test routes an entry by: all ports for ICMP type and code.
    private func portRange(_ rule: ClassifierRule, remote: Bool) -> (UInt16, UInt16) {
        if rule.isICMP { return (0, .max) }
        return remote ? (rule.remoteLower, rule.remoteUpper) : (rule.localLower, rule.localUpper)
    }

    private mutating func leaf(_ positions: [Int32]) -> Int32 {
        leafPositions.append(contentsOf: positions)
        leafStarts.append(Int32(leafPositions.count))
        return ~Int32(leafStarts.count - 2)
    }

    /// The test whose larger child is smallest (then: least duplication), or nil when none
    /// shrinks the larger child by a useful share.
    private mutating func bestSplit(_ positions: [Int32]) -> Split? {
        let total = positions.count
        let enough = total - max(1, total / Self.minimumGain)
        var best = bestBitSplit(positions)
        if (best?.larger ?? total) > total * 3 / 4 {
            for test in [BitTreeNode.Test.localPort, .remotePort] {
                if let split = bestPortSplit(positions, test: test), split.isBetter(than: best) { best = split }
            }
        }
        guard let best, best.larger <= enough else { return nil }
        return best
    }

    private mutating func bestBitSplit(_ positions: [Int32]) -> Split? {
        for index in care.indices {
            care[index] = 0
            ones[index] = 0
        }
        // Large nodes are judged on an even sample: any test is exact, the counts only pick one.
        let stride = max(1, positions.count / sampleSize)
        care.withUnsafeMutableBufferPointer { care in
            ones.withUnsafeMutableBufferPointer { ones in
                func count(_ address: UInt128, _ mask: UInt128, offset: Int) {
                    var remaining = mask
                    while remaining != 0 {
                        let bit = remaining.trailingZeroBitCount
                        care[offset + bit] += 1
                        ones[offset + bit] += Int32(truncatingIfNeeded: (address >> bit) & 1)
                        remaining &= remaining - 1
                    }
                }
                for index in Swift.stride(from: 0, to: positions.count, by: stride) {
                    let rule = rules[Int(positions[index])]
                    count(rule.localAddress, rule.localMask, offset: 0)
                    count(rule.remoteAddress, rule.remoteMask, offset: width)
                }
            }
        }
        let sampled = (positions.count + stride - 1) / stride
        var best: (larger: Int, sum: Int, index: Int)?
        for index in care.indices where care[index] > 0 {
            let zeroSize = sampled - Int(ones[index])
            let oneSize = sampled - Int(care[index] - ones[index])
            let candidate = (larger: max(zeroSize, oneSize), sum: zeroSize + oneSize, index: index)
            if let current = best, (current.larger, current.sum) <= (candidate.larger, candidate.sum) { continue }
            best = candidate
        }
        guard let best else { return nil }
        let test: BitTreeNode.Test = best.index < width ? .localBit : .remoteBit
        let bit = UInt8(best.index % width)
        guard stride > 1 else {
            return Split(test: test, bit: bit, threshold: 0, larger: best.larger, sum: best.sum)
        }
        // The sizes of the chosen split, counted over every entry.
        var zeroSize = 0, oneSize = 0
        let probe = Split(test: test, bit: bit, threshold: 0, larger: 0, sum: 0)
        for position in positions {
            let (toZero, toOne) = sides(rules[Int(position)], probe)
            if toZero { zeroSize += 1 }
            if toOne { oneSize += 1 }
        }
        return Split(test: test, bit: bit, threshold: 0, larger: max(zeroSize, oneSize), sum: zeroSize + oneSize)
    }

    /// The best threshold among the entries' range ends: `port < t` to one side, `port >= t` to the other.
    private func bestPortSplit(_ positions: [Int32], test: BitTreeNode.Test) -> Split? {
        var lowers: [UInt16] = [], uppers: [UInt16] = []
        lowers.reserveCapacity(positions.count)
        uppers.reserveCapacity(positions.count)
        for position in positions {
            let (lower, upper) = portRange(rules[Int(position)], remote: test == .remotePort)
            lowers.append(lower)
            uppers.append(upper)
        }
        lowers.sort()
        uppers.sort()
        let candidates = Set(lowers + uppers.compactMap { $0 == .max ? nil : $0 + 1 }).filter { $0 > 0 }.sorted()
        let total = positions.count
        var best: Split?
        var belowLower = 0, belowUpper = 0
        for threshold in candidates {
            while belowLower < lowers.count && lowers[belowLower] < threshold { belowLower += 1 }
            while belowUpper < uppers.count && uppers[belowUpper] < threshold { belowUpper += 1 }
            // Zero side: entries starting below the threshold; one side: entries ending at or above it.
            let zeroSize = belowLower
            let oneSize = total - belowUpper
            let split = Split(test: test, bit: 0, threshold: threshold,
                              larger: max(zeroSize, oneSize), sum: zeroSize + oneSize)
            if split.isBetter(than: best) { best = split }
        }
        return best
    }
}
