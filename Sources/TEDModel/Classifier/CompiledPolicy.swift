/// First-match lookups through decision trees compiled once from the ordered policy.
///
/// Entries are split by IP version, then into three groups by which side their masks
/// constrain (local side to at least half its bits; else the remote side; else neither),
/// as CutSplit and EffiCuts separate "big" and "small" fields so that one side's
/// wildcards are not copied under every cut of the other. Each group is a `BitTree`
/// testing single address bits (which keeps non-contiguous masks exact) or port
/// thresholds; the leaves check each candidate entry in full. A lookup walks the trees of the
/// packet's version in order of their earliest entry and keeps the earliest match: the
/// policy's linear-scan answer, for both roles.
public struct CompiledPolicy: Sendable, PolicyLookup {
    public let policy: Policy
    /// Trees for IPv4 and IPv6 packets, each list ordered by the trees' earliest entry.
    private let v4: [BitTree<UInt32>]
    private let v6: [BitTree<UInt128>]

    /// Compiles `policy`; `leafSize` is the most entries a leaf holds when a test can still split them.
    public init(_ policy: Policy, leafSize: Int = 8) {
        self.init(policy, leafSize: leafSize, sampleSize: 4096)
    }

    /// `sampleSize`: a node with more entries chooses its address bit by counting an even sample.
    init(_ policy: Policy, leafSize: Int, sampleSize: Int) {
        self.policy = policy
        let rules = policy.rules.map { ClassifierRule($0.entry) }
        func trees<Address>(_ family: IPAddress.Family) -> [BitTree<Address>] {
            let width = family.bitWidth
            var groups: [[Int32]] = [[], [], []]
            for (position, rule) in policy.rules.enumerated() {
                if let ruleFamily = rule.entry.family, ruleFamily != family { continue }
                // Sides of different versions (the parser refuses them) match no packet.
                if let local = rule.entry.local.family, let remote = rule.entry.remote.family, local != remote { continue }
                let compiled = rules[position]
                let group = compiled.localMask.nonzeroBitCount * 2 >= width ? 0
                    : compiled.remoteMask.nonzeroBitCount * 2 >= width ? 1 : 2
                groups[group].append(Int32(position))
            }
            return groups.filter { !$0.isEmpty }
                .map { BitTreeBuilder.build($0, rules: rules, leafSize: leafSize, sampleSize: sampleSize) }
                .sorted { $0.first < $1.first }
        }
        v4 = trees(.v4)
        v6 = trees(.v6)
    }

    public func firstMatch(_ packet: Packet, as role: Role) -> PolicyRule? {
        firstMatchPosition(packet, as: role).map { policy.rules[$0] }
    }

    /// The 0-based position of the first matching entry, without copying the rule.
    public func firstMatchPosition(_ packet: Packet, as role: Role) -> Int? {
        let best = packet.family == .v4
            ? Self.firstMatch(ClassifierKey<UInt32>(packet, as: role), in: v4)
            : Self.firstMatch(ClassifierKey<UInt128>(packet, as: role), in: v6)
        return best == Int.max ? nil : best
    }

    @inline(__always)
    private static func firstMatch<Address>(_ key: ClassifierKey<Address>, in trees: [BitTree<Address>]) -> Int {
        var best = Int.max
        for tree in trees {
            if tree.first >= best { break }
            best = tree.firstMatch(key, below: best)
        }
        return best
    }

    /// The positions above `position` of the entries sharing traffic with its entry in
    /// `family`, ascending: `Policy.earlierPositions(sharingWith:family:)` through the trees.
    public func earlierPositions(sharingWith position: Int, family: IPAddress.Family) -> [Int] {
        let entry = policy.entry(at: position)
        guard entry.restricted(to: family) != nil else { return [] }
        var found = Set<Int>()
        let rule = ClassifierRule(entry)
        switch family {
        case .v4:
            let box = LeafRule<UInt32>(rule, position: Int32(position))
            for tree in v4 where tree.first < position { tree.entries(sharingWith: box, below: position, into: &found) }
        case .v6:
            let box = LeafRule<UInt128>(rule, position: Int32(position))
            for tree in v6 where tree.first < position { tree.entries(sharingWith: box, below: position, into: &found) }
        }
        return found.sorted()
    }

    /// The shape and size of the compiled trees.
    public var statistics: Statistics {
        let shapes = v4.map(\.shape) + v6.map(\.shape)
        return Statistics(
            trees: shapes.count, nodes: shapes.reduce(0) { $0 + $1.nodes }, depth: shapes.map(\.depth).max() ?? 0,
            leaves: shapes.reduce(0) { $0 + $1.leaves }, leafEntries: shapes.reduce(0) { $0 + $1.leafEntries },
            largestLeaf: shapes.map(\.largestLeaf).max() ?? 0, footprintBytes: shapes.reduce(0) { $0 + $1.footprintBytes })
    }

    /// Counts describing the compiled trees (for benchmarks and tuning).
    public struct Statistics: Hashable, Sendable {
        public let trees: Int
        public let nodes: Int
        /// Nodes on the longest path of any tree.
        public let depth: Int
        public let leaves: Int
        /// Entries summed over all leaves: above the policy's size by the duplication.
        public let leafEntries: Int
        public let largestLeaf: Int
        /// Bytes of the classifier's own arrays (the policy it answers with not counted).
        public let footprintBytes: Int
    }
}
