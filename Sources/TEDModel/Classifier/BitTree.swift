/// A binary decision tree over address bits and port thresholds, with small ordered leaves.
///
/// A node tests one bit of the local or remote address, or compares the local or remote
/// port with a threshold. An entry sits under every child it can match: under both when
/// its mask ignores the bit (so arbitrary, non-contiguous masks need no expansion into
/// prefixes) or when its port range straddles the threshold. ICMP entries, whose "ports"
/// are type and code and keep their sides in both roles, sit under both children of every
/// port node. A leaf holds copies of the entries it may match, in policy order; the
/// first that matches in full is the leaf's answer.
struct BitTree<Address: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// The root: a node index when >= 0, else `~leaf`.
    let root: Int32
    let nodes: [BitTreeNode]
    /// Leaf `k` holds `leafRules[leafStarts[k] ..< leafStarts[k + 1]]`, by ascending position.
    let leafStarts: [Int32]
    let leafRules: [LeafRule<Address>]
    /// The smallest position in the tree: when a match is already earlier, skip the tree.
    let first: Int
    /// Nodes on the longest path from the root.
    let depth: Int
    let hasPortNodes: Bool

    /// The earliest matching position below `limit`, else `limit`.
    @inline(__always)
    func firstMatch(_ key: ClassifierKey<Address>, below limit: Int) -> Int {
        nodes.withUnsafeBufferPointer { nodes in
            leafRules.withUnsafeBufferPointer { rules in
                leafStarts.withUnsafeBufferPointer { starts in
                    func scan(_ leaf: Int, below limit: Int) -> Int {
                        for slot in Int(starts[leaf])..<Int(starts[leaf + 1]) {
                            let rule = rules[slot]
                            if Int(rule.position) >= limit { break }
                            if rule.matches(key) { return Int(rule.position) }
                        }
                        return limit
                    }
                    guard hasPortNodes && (key.localPort < 0 || key.remotePort < 0) else {
                        var current = root
                        while current >= 0 {
                            current = Self.child(nodes[Int(current)], key)
                        }
                        return scan(Int(~current), below: limit)
                    }
                    // An absent port matches every range: visit both sides of its port tests.
                    return withUnsafeTemporaryAllocation(of: Int32.self, capacity: depth + 1) { stack in
                        var best = limit
                        var pending = 1
                        stack[0] = root
                        while pending > 0 {
                            pending -= 1
                            var current = stack[pending]
                            while current >= 0 {
                                let node = nodes[Int(current)]
                                let port = node.test == .localPort ? key.localPort
                                    : node.test == .remotePort ? key.remotePort : 0
                                if port < 0 {
                                    stack[pending] = node.one
                                    pending += 1
                                    current = node.zero
                                } else {
                                    current = Self.child(node, key)
                                }
                            }
                            best = scan(Int(~current), below: best)
                        }
                        return best
                    }
                }
            }
        }
    }

    @inline(__always)
    private static func child(_ node: BitTreeNode, _ key: ClassifierKey<Address>) -> Int32 {
        let zero: Bool = switch node.test {
        case .localBit: (key.local >> node.bit) & 1 == 0
        case .remoteBit: (key.remote >> node.bit) & 1 == 0
        case .localPort: key.localPort < Int32(node.threshold)
        case .remotePort: key.remotePort < Int32(node.threshold)
        }
        return zero ? node.zero : node.one
    }

    /// Counts for `CompiledPolicy.Statistics`.
    var shape: (nodes: Int, depth: Int, leaves: Int, leafEntries: Int, largestLeaf: Int, footprintBytes: Int) {
        let leaves = leafStarts.count - 1
        let largestLeaf = (0..<leaves).map { Int(leafStarts[$0 + 1] - leafStarts[$0]) }.max() ?? 0
        let bytes = nodes.capacity * MemoryLayout<BitTreeNode>.stride + leafStarts.capacity * 4
            + leafRules.capacity * MemoryLayout<LeafRule<Address>>.stride
        return (nodes.count, depth, leaves, leafRules.count, largestLeaf, bytes)
    }
}

/// One test of a `BitTree`.
struct BitTreeNode: Sendable {
    enum Test: UInt8, Sendable {
        case localBit, remoteBit
        /// `port < threshold` goes to `zero`.
        case localPort, remotePort
    }

    let test: Test
    /// Bit number (0 = least significant) for a bit test.
    let bit: UInt8
    /// For a port test.
    let threshold: UInt16
    /// Children: a node index when >= 0, else `~leaf`.
    let zero: Int32
    let one: Int32
}
