import TEDModel

/// First-match lookups through an index on the local side, for large policies.
///
/// Entries are grouped by the mask of their local pattern (`any` has the empty mask);
/// within a group a hash table maps the masked local address to the entries' positions,
/// ascending. A lookup visits each group once (a handful of distinct masks in real ACLs),
/// checks only the entries whose local side matches, and keeps the smallest position
/// that matches in full: the same answer as the policy's linear scan, which the tests
/// check on ClassBench rule sets.
public struct IndexedPolicy: Sendable, PolicyLookup {
    public let policy: Policy
    private let entries: [PolicyEntry]
    private let groups: [Group]

    private struct Group: Sendable {
        let family: IPAddress.Family?
        let mask: UInt128
        let positions: [UInt128: [Int32]]
        /// The group's earliest entry: once a match is earlier, later groups cannot win.
        let first: Int
    }

    public init(_ policy: Policy) {
        self.policy = policy
        self.entries = policy.rules.map(\.entry)
        var byMask: [GroupKey: [UInt128: [Int32]]] = [:]
        var order: [GroupKey] = []
        for (position, entry) in entries.enumerated() {
            let key: GroupKey
            let address: UInt128
            switch entry.local {
            case .any:
                key = GroupKey(family: nil, mask: 0)
                address = 0
            case .pattern(let pattern):
                key = GroupKey(family: pattern.family, mask: pattern.mask.bits)
                address = pattern.address.bits
            }
            if byMask[key] == nil { order.append(key) }
            byMask[key, default: [:]][address, default: []].append(Int32(position))
        }
        groups = order.map { key in
            let positions = byMask[key] ?? [:]
            return Group(family: key.family, mask: key.mask, positions: positions,
                         first: Int(positions.values.compactMap(\.first).min() ?? 0))
        }  // `order` is by first appearance, so groups are sorted by `first`.
    }

    private struct GroupKey: Hashable {
        let family: IPAddress.Family?
        let mask: UInt128
    }

    public func firstMatch(_ packet: Packet, as role: Role) -> PolicyRule? {
        firstMatchPosition(packet, as: role).map { policy.rules[$0] }
    }

    /// By the policy's scan: the index serves point lookups only.
    public func earlierPositions(sharingWith position: Int, family: IPAddress.Family) -> [Int] {
        policy.earlierPositions(sharingWith: position, family: family)
    }

    public func firstMatchPosition(_ packet: Packet, as role: Role) -> Int? {
        let local = role == .initiator ? packet.source : packet.destination
        var best = Int.max
        for group in groups {
            if group.first >= best { break }
            if let family = group.family, family != local.family { continue }
            guard let candidates = group.positions[local.bits & group.mask] else { continue }
            for candidate in candidates {
                let position = Int(candidate)
                if position >= best { break }
                let entry = entries[position]
                if role == .initiator ? entry.matchesOutbound(packet) : entry.matchesInbound(packet) {
                    best = position
                    break
                }
            }
        }
        return best == Int.max ? nil : best
    }
}
