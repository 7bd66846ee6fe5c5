/// Kernel objects that child SAs share, reference-counted: each child SA (by its unique
/// name) holds the keys it needs; a key is installed when its first holder comes and
/// removed when its last goes. Two child SAs may have equal selectors (two peers, or a
/// rekey overlapping its predecessor), and one going down must not take the other's away.
struct ChildReferences<Key: Hashable & Sendable>: Sendable {
    private var holders: [String: [Key]] = [:]
    private var counts: [Key: Int] = [:]

    /// Records `child`'s keys; returns those that no other child held (to install).
    /// A child already recorded changes nothing.
    mutating func add(_ child: String, _ keys: [Key]) -> [Key] {
        guard holders[child] == nil else { return [] }
        let unique = Array(Set(keys))
        holders[child] = unique
        return unique.filter { key in
            defer { counts[key, default: 0] += 1 }
            return counts[key] == nil
        }
    }

    /// Forgets `child`; returns the keys no child holds any more (to remove).
    mutating func remove(_ child: String) -> [Key] {
        guard let keys = holders.removeValue(forKey: child) else { return [] }
        return keys.filter { key in
            let left = (counts[key] ?? 1) - 1
            counts[key] = left > 0 ? left : nil
            return left <= 0
        }
    }

    /// A rekey: the new child SA holds what the old one held. When the new one was
    /// recorded on its own already, the old one is simply forgotten. Returns the keys no
    /// child holds any more (to remove).
    mutating func rename(_ old: String, to new: String) -> [Key] {
        guard old != new, holders[old] != nil else { return [] }
        if holders[new] != nil { return remove(old) }
        holders[new] = holders.removeValue(forKey: old)
        return []
    }

    func holds(_ child: String) -> Bool { holders[child] != nil }

    /// Every child's keys.
    var children: [String: [Key]] { holders }

    /// Every key held.
    var keys: [Key] { Array(counts.keys) }
}
