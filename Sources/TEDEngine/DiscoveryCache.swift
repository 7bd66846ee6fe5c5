import NIOCore
import TEDModel
import TEDWire

/// The discoveries that answer later packets without a probe, bounded, least recently used out.
struct DiscoveryCache: Sendable {
    struct Key: Hashable, Sendable {
        var ruleIndex: Int
        var peer: Identity
        var intersection: Proxy
    }

    struct Entry: Sendable {
        var discovery: Discovery
        var expires: NIODeadline
    }

    private var table: BoundedLRU<Key, Entry>

    init(capacity: Int) {
        table = BoundedLRU(capacity: capacity)
    }

    var count: Int { table.count }

    /// The most recently used live discovery of `ruleIndex` whose intersection holds `packet`.
    mutating func lookup(_ packet: Packet, ruleIndex: Int, now: NIODeadline) -> Discovery? {
        guard let hit = newestLive(packet, ruleIndex: ruleIndex, now: now) else { return nil }
        _ = table.use(hit.key)
        return hit.value.discovery
    }

    /// Whether `lookup` would find a discovery (without marking it used).
    func holds(_ packet: Packet, ruleIndex: Int, now: NIODeadline) -> Bool {
        newestLive(packet, ruleIndex: ruleIndex, now: now) != nil
    }

    private func newestLive(_ packet: Packet, ruleIndex: Int, now: NIODeadline) -> (key: Key, value: Entry)? {
        table.firstNewest { key, entry in
            key.ruleIndex == ruleIndex && entry.expires > now && key.intersection.contains(packet)
        }
    }

    /// Stores a discovery; returns whether another entry was evicted for it.
    mutating func insert(_ discovery: Discovery, expires: NIODeadline) -> Bool {
        let key = Key(ruleIndex: discovery.localRule.index, peer: discovery.peer, intersection: discovery.intersection)
        return table.insert(Entry(discovery: discovery, expires: expires), for: key) != nil
    }

    mutating func removeExpired(now: NIODeadline) -> Int {
        table.removeAll { _, entry in entry.expires <= now }
    }

    mutating func remove(peer: IPAddress) -> Int {
        table.removeAll { key, _ in key.peer.address == peer }
    }

    /// Removes every entry whose intersection shares a packet with `proxy`.
    mutating func remove(overlapping proxy: Proxy) -> Int {
        table.removeAll { key, _ in key.intersection.intersection(proxy) != nil }
    }

    var earliestExpiry: NIODeadline? { table.values.lazy.map(\.expires).min() }

    var entries: [Entry] { table.newestFirst.map(\.value) }
}

/// What a failure suppresses: a packet's flow without its source port, which changes per
/// connection. For ICMP the type (held as the source port) is kept.
struct ServiceKey: Hashable, Sendable {
    var ruleIndex: Int
    var source: IPAddress
    var destination: IPAddress
    var destinationPort: UInt16
    var proto: IPProtocol
    var servicePort: UInt16?
    var icmpType: UInt16?

    init(ruleIndex: Int, packet: Packet, destination: IPAddress, destinationPort: UInt16) {
        self.ruleIndex = ruleIndex
        self.source = packet.source
        self.destination = destination
        self.destinationPort = destinationPort
        self.proto = packet.proto.on(packet.family)
        self.servicePort = packet.destinationPort
        self.icmpType = packet.proto.isICMP ? packet.sourcePort : nil
    }
}

/// Recent failures, so that a flow that cannot be discovered does not probe on every packet.
struct FailureCache: Sendable {
    struct Entry: Sendable {
        var failure: Failure
        var expires: NIODeadline
    }

    private var table: BoundedLRU<ServiceKey, Entry>

    init(capacity: Int) {
        table = BoundedLRU(capacity: capacity)
    }

    var count: Int { table.count }

    mutating func lookup(_ key: ServiceKey, now: NIODeadline) -> Entry? {
        guard let entry = table.peek(key) else { return nil }
        guard entry.expires > now else {
            table.removeValue(for: key)
            return nil
        }
        return table.use(key)
    }

    /// The live entry `lookup` would return, leaving the table alone.
    func peek(_ key: ServiceKey, now: NIODeadline) -> Entry? {
        table.peek(key).flatMap { $0.expires > now ? $0 : nil }
    }

    /// Stores a failure; returns whether another entry was evicted for it.
    mutating func insert(_ failure: Failure, key: ServiceKey, expires: NIODeadline) -> Bool {
        table.insert(Entry(failure: failure, expires: expires), for: key) != nil
    }

    mutating func remove(_ key: ServiceKey) {
        table.removeValue(for: key)
    }

    mutating func removeExpired(now: NIODeadline) -> Int {
        table.removeAll { _, entry in entry.expires <= now }
    }

    mutating func remove(peer: IPAddress) -> Int {
        table.removeAll { _, entry in entry.failure.peer?.address == peer }
    }

    var earliestExpiry: NIODeadline? { table.values.lazy.map(\.expires).min() }

    var entries: [Entry] { table.newestFirst.map(\.value) }
}

/// Claims that IKE did not prove: a responder whose tunnel for an intersection never came
/// up (a certificate of another identity or CA, or address blocks that leave the
/// selectors out). Until expiry its responses for packets inside that intersection are
/// set aside, so a genuine responder that answers later can be found.
struct RefutationCache: Sendable {
    struct Key: Hashable, Sendable {
        var peer: IPAddress
        var intersection: Proxy
    }

    private var table: BoundedLRU<Key, NIODeadline>

    init(capacity: Int) {
        table = BoundedLRU(capacity: capacity)
    }

    var count: Int { table.count }

    /// Stores a refutation; returns whether another entry was evicted for it.
    mutating func insert(peer: IPAddress, intersection: Proxy, expires: NIODeadline) -> Bool {
        table.insert(expires, for: Key(peer: peer, intersection: intersection)) != nil
    }

    /// Whether a live refutation of `peer` holds `packet`.
    func refutes(_ peer: IPAddress, _ packet: Packet, now: NIODeadline) -> Bool {
        table.firstNewest { key, expires in key.peer == peer && expires > now && key.intersection.contains(packet) } != nil
    }

    mutating func removeExpired(now: NIODeadline) -> Int {
        table.removeAll { _, expires in expires <= now }
    }

    var earliestExpiry: NIODeadline? { table.values.lazy.min() }

    var entries: [(key: Key, value: NIODeadline)] { table.newestFirst }
}
