/// A dictionary that holds at most `capacity` entries and evicts the least recently used.
///
/// Entries live in one array linked newest to oldest by index; removal moves the last
/// array element into the hole, so every operation is O(1) and no slot is ever wasted.
struct BoundedLRU<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Node: Sendable {
        var key: Key
        var value: Value
        var newer: Int
        var older: Int
    }

    private var nodes: [Node] = []
    private var slots: [Key: Int] = [:]
    private var newest = -1
    private var oldest = -1
    let capacity: Int

    /// A table of at most `capacity` entries (a negative capacity is taken as 0).
    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { nodes.count }
    var isEmpty: Bool { nodes.isEmpty }

    /// The value for `key`, marking it most recently used.
    mutating func use(_ key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        moveToNewest(slot)
        return nodes[slot].value
    }

    /// The value for `key`, leaving the order alone.
    func peek(_ key: Key) -> Value? {
        slots[key].map { nodes[$0].value }
    }

    /// Inserts or replaces `key` as the most recently used entry.
    ///
    /// Returns the entry evicted to make room, if any (with capacity 0, the new one).
    @discardableResult
    mutating func insert(_ value: Value, for key: Key) -> (key: Key, value: Value)? {
        if let slot = slots[key] {
            nodes[slot].value = value
            moveToNewest(slot)
            return nil
        }
        guard capacity > 0 else { return (key, value) }
        var evicted: (key: Key, value: Value)?
        if nodes.count >= capacity, oldest >= 0 {
            let victim = nodes[oldest]
            remove(slot: oldest)
            evicted = (victim.key, victim.value)
        }
        nodes.append(Node(key: key, value: value, newer: -1, older: newest))
        let slot = nodes.count - 1
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
        slots[key] = slot
        return evicted
    }

    @discardableResult
    mutating func removeValue(for key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        let value = nodes[slot].value
        remove(slot: slot)
        return value
    }

    /// Removes every entry for which `shouldRemove` holds; returns how many went.
    @discardableResult
    mutating func removeAll(where shouldRemove: (Key, Value) -> Bool) -> Int {
        let doomed = nodes.filter { shouldRemove($0.key, $0.value) }.map(\.key)
        for key in doomed { removeValue(for: key) }
        return doomed.count
    }

    /// All entries, most recently used first.
    var newestFirst: [(key: Key, value: Value)] {
        var result: [(key: Key, value: Value)] = []
        result.reserveCapacity(nodes.count)
        var slot = newest
        while slot >= 0 {
            result.append((nodes[slot].key, nodes[slot].value))
            slot = nodes[slot].older
        }
        return result
    }

    /// The first entry, most recently used first, that satisfies `predicate`.
    func firstNewest(where predicate: (Key, Value) -> Bool) -> (key: Key, value: Value)? {
        var slot = newest
        while slot >= 0 {
            if predicate(nodes[slot].key, nodes[slot].value) { return (nodes[slot].key, nodes[slot].value) }
            slot = nodes[slot].older
        }
        return nil
    }

    /// Every value, in storage order (cheap; order carries no meaning).
    var values: some Sequence<Value> { nodes.lazy.map(\.value) }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        nodes[slot].newer = -1
        nodes[slot].older = newest
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func remove(slot: Int) {
        unlink(slot)
        slots[nodes[slot].key] = nil
        let last = nodes.count - 1
        if slot != last {
            let moved = nodes[last]
            nodes[slot] = moved
            slots[moved.key] = slot
            if moved.newer >= 0 { nodes[moved.newer].older = slot } else { newest = slot }
            if moved.older >= 0 { nodes[moved.older].newer = slot } else { oldest = slot }
        }
        nodes.removeLast()
    }
}
