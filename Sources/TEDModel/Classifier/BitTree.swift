/// A binary decision tree over address bits and port thresholds, with small ordered leaves.
///
/// A node tests one bit of the local or remote address, or compares the local or remote
/// port with a threshold. An entry sits under every child it can match: under both when
/// its mask ignores the bit (so arbitrary, non-contiguous masks need no expansion into
/// prefixes) or when its port range straddles the threshold. ICMP entries, whose "ports"
/// are type and code and keep their sides in both roles, sit under both children of every
/// port node. A leaf lists the positions of the entries it may hold in policy order; the
/// first that matches in full is the leaf's answer.
struct BitTree: Sendable {
    struct Node: Sendable {
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

    /// The root: a node index when >= 0, else `~leaf`.
    let root: Int32
    let nodes: [Node]
    /// Leaf `k` holds `leafPositions[leafStarts[k] ..< leafStarts[k + 1]]`, ascending.
    let leafStarts: [Int32]
    let leafPositions: [Int32]
    /// The smallest position in the tree: when a match is already earlier, skip the tree.
    let first: Int
    /// Nodes on the longest path from the root.
    let depth: Int
    let hasPortNodes: Bool

    /// The earliest matching position below `limit`, else `limit`.
    @inline(__always)
    func firstMatch(_ key: ClassifierKey, rules: UnsafeBufferPointer<ClassifierRule>, below limit: Int) -> Int {
        nodes.withUnsafeBufferPointer { nodes in
            leafPositions.withUnsafeBufferPointer { positions in
                leafStarts.withUnsafeBufferPointer { starts in
                    func scan(_ leaf: Int, below limit: Int) -> Int {
                        for slot in Int(starts[leaf])..<Int(starts[leaf + 1]) {
                            let position = Int(positions[slot])
                            if position >= limit { break }
                            if rules[position].matches(key) { return position }
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
    private static func child(_ node: Node, _ key: ClassifierKey) -> Int32 {
        let zero: Bool = switch node.test {
        case .localBit: (key.local >> node.bit) & 1 == 0
        case .remoteBit: (key.remote >> node.bit) & 1 == 0
        case .localPort: key.localPort < Int32(node.threshold)
        case .remotePort: key.remotePort < Int32(node.threshold)
        }
        return zero ? node.zero : node.one
    }

    /// Bytes held by the tree's arrays.
    var footprintBytes: Int {
        nodes.capacity * MemoryLayout<Node>.stride + leafStarts.capacity * 4 + leafPositions.capacity * 4
    }

    var leafCount: Int { leafStarts.count - 1 }
}
