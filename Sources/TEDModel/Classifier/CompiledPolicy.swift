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
    private let rules: [ClassifierRule]
    /// Trees for IPv4 and IPv6 packets, each list ordered by the trees' earliest entry.
    private let v4: [BitTree]
    private let v6: [BitTree]

    /// Compiles `policy`; `leafSize` is the most entries a leaf holds when a bit can still split them.
    public init(_ policy: Policy, leafSize: Int = 8) {
        self.policy = policy
        let rules = policy.rules.map { ClassifierRule($0.entry) }
        self.rules = rules
        func trees(_ family: IPAddress.Family) -> [BitTree] {
            let width = family.bitWidth
            var groups: [[Int32]] = [[], [], []]
            for (position, rule) in policy.rules.enumerated() {
                if let ruleFamily = rule.entry.family, ruleFamily != family { continue }
                let compiled = rules[position]
                let group = compiled.localMask.nonzeroBitCount * 2 >= width ? 0
                    : compiled.remoteMask.nonzeroBitCount * 2 >= width ? 1 : 2
                groups[group].append(Int32(position))
            }
            return groups.filter { !$0.isEmpty }
                .map { BitTreeBuilder.build($0, rules: rules, width: width, leafSize: leafSize) }
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
        let key = ClassifierKey(packet, as: role)
        let trees = packet.family == .v4 ? v4 : v6
        var best = Int.max
        rules.withUnsafeBufferPointer { rules in
            for tree in trees {
                if tree.first >= best { break }
                best = tree.firstMatch(key, rules: rules, below: best)
            }
        }
        return best == Int.max ? nil : best
    }

    /// The shape and size of the compiled trees.
    public var statistics: Statistics {
        let trees = v4 + v6
        var largestLeaf = 0
        for tree in trees {
            for leaf in 0..<tree.leafCount {
                largestLeaf = max(largestLeaf, Int(tree.leafStarts[leaf + 1] - tree.leafStarts[leaf]))
            }
        }
        return Statistics(
            trees: trees.count, nodes: trees.reduce(0) { $0 + $1.nodes.count },
            depth: trees.map(\.depth).max() ?? 0,
            leaves: trees.reduce(0) { $0 + $1.leafCount },
            leafEntries: trees.reduce(0) { $0 + $1.leafPositions.count }, largestLeaf: largestLeaf,
            footprintBytes: rules.capacity * MemoryLayout<ClassifierRule>.stride + trees.reduce(0) { $0 + $1.footprintBytes })
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
