extension BitTree {
    /// Adds to `found` the positions below `limit` of entries that share traffic with
    /// `box` (as `PolicyEntry.sharesTraffic`: ICMP types and codes not told apart): the
    /// tree is walked down every child the box reaches (both where its mask ignores the
    /// bit or its port range straddles the threshold), and each leaf entry checked.
    func entries(sharingWith box: LeafRule<Address>, below limit: Int, into found: inout Set<Int>) {
        // A box without ports (any protocol, ICMP) reaches both sides of a port test.
        let ports = box.proto != 0 && IPProtocol(box.proto).hasPorts
        var pending: [Int32] = [root]
        while let current = pending.popLast() {
            guard current >= 0 else {
                let leaf = Int(~current)
                for slot in Int(leafStarts[leaf])..<Int(leafStarts[leaf + 1]) {
                    let rule = leafRules[slot]
                    if Int(rule.position) >= limit { break }
                    if rule.sharesTraffic(with: box) { found.insert(Int(rule.position)) }
                }
                continue
            }
            let node = nodes[Int(current)]
            let (zero, one): (Bool, Bool) = switch node.test {
            case .localBit: Self.reaches(box.localAddress, box.localMask, bit: node.bit)
            case .remoteBit: Self.reaches(box.remoteAddress, box.remoteMask, bit: node.bit)
            case .localPort: ports ? (box.localLower < node.threshold, box.localUpper >= node.threshold) : (true, true)
            case .remotePort: ports ? (box.remoteLower < node.threshold, box.remoteUpper >= node.threshold) : (true, true)
            }
            if zero { pending.append(node.zero) }
            if one { pending.append(node.one) }
        }
    }

    private static func reaches(_ address: Address, _ mask: Address, bit: UInt8) -> (zero: Bool, one: Bool) {
        guard (mask >> bit) & 1 == 1 else { return (true, true) }
        let set = (address >> bit) & 1 == 1
        return (!set, set)
    }
}

extension LeafRule {
    /// `PolicyEntry.sharesTraffic` on the flattened entries.
    func sharesTraffic(with other: LeafRule) -> Bool {
        guard proto == 0 || other.proto == 0 || proto == other.proto,
              (localAddress ^ other.localAddress) & localMask & other.localMask == 0,
              (remoteAddress ^ other.remoteAddress) & remoteMask & other.remoteMask == 0 else { return false }
        let common = proto == 0 ? other.proto : proto
        guard common != 0, IPProtocol(common).hasPorts else { return true }
        return localLower <= other.localUpper && other.localLower <= localUpper
            && remoteLower <= other.remoteUpper && other.remoteLower <= remoteUpper
    }
}
