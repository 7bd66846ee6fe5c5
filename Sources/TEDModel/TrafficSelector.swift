/// What one IKE child SA carries, from the local side's view: a protocol, a local prefix
/// and port range, a remote prefix and port range (IKEv2 traffic selectors are ranges, so
/// addresses are prefixes). For ICMP the ports stay `all`: IKE selectors here never
/// narrow ICMP type or code.
public struct TrafficSelector: Hashable, Sendable, CustomStringConvertible {
    public var proto: IPProtocol
    public var local: AddressPattern
    public var localPorts: PortRange
    public var remote: AddressPattern
    public var remotePorts: PortRange

    public init(proto: IPProtocol, local: AddressPattern, localPorts: PortRange = .all,
                remote: AddressPattern, remotePorts: PortRange = .all) {
        self.proto = proto.on(local.family)
        self.local = local
        self.localPorts = localPorts
        self.remote = remote
        self.remotePorts = remotePorts
    }

    public var family: IPAddress.Family { local.family }

    /// Whether the ports are part of the selector (a protocol with ports).
    private var hasPorts: Bool { proto.hasPorts }

    /// Whether an outbound packet (local source, remote destination) lies inside.
    public func contains(_ packet: Packet) -> Bool {
        guard proto.isAny || proto == packet.proto.on(packet.family), local.contains(packet.source), remote.contains(packet.destination)
        else { return false }
        guard hasPorts else { return true }
        return (packet.sourcePort.map(localPorts.contains) ?? localPorts.isAll)
            && (packet.destinationPort.map(remotePorts.contains) ?? remotePorts.isAll)
    }

    /// Whether every packet inside `other` lies inside this one too (ports count only where
    /// the protocol has them).
    public func contains(_ other: TrafficSelector) -> Bool {
        guard proto.isAny || proto == other.proto, local.contains(other.local), remote.contains(other.remote) else { return false }
        guard hasPorts else { return true }
        return localPorts.contains(other.localPorts) && remotePorts.contains(other.remotePorts)
    }

    /// Whether some outbound packet lies both inside and in `entry` (exact: patterns
    /// intersect exactly when they share an address).
    public func overlaps(_ entry: PolicyEntry) -> Bool {
        guard entry.proto.isAny || proto.isAny || entry.proto.on(family) == proto,
              let entryLocal = entry.local.pattern(for: family), let entryRemote = entry.remote.pattern(for: family),
              local.intersection(entryLocal) != nil, remote.intersection(entryRemote) != nil else { return false }
        let common = proto.isAny ? entry.proto.on(family) : proto
        guard common.hasPorts else { return true }
        return localPorts.intersection(entry.localPorts) != nil && remotePorts.intersection(entry.remotePorts) != nil
    }

    /// log2 of how many (protocol, address, port) tuples the selector holds: how options compare.
    var size: Double {
        // log2 by exponent and significand: exact for powers of two, monotonic between them.
        func log2(_ count: Int) -> Double { Double(Double(count).exponent) + Double(count).significand - 1 }
        let ports = hasPorts ? log2(localPorts.count) + log2(remotePorts.count) : 32
        return (proto.isAny ? 8 : 0) + Double(local.freeBitCount + remote.freeBitCount) + ports
    }

    /// The child an initiator proposes for a discovery (patent block 218 onwards): the
    /// largest box of prefixes and port ranges that holds P, lies inside the
    /// intersection, and shares no packet with `earlier` — the entries of the initiator's
    /// own policy above the one P matched (a `deny`, or a `permit` whose traffic may
    /// belong to another peer): a tunnel never takes traffic the policy gives elsewhere.
    ///
    /// Each earlier entry that overlaps is cut away along one dimension in which P lies
    /// outside it (there is always one: P did not match it), choosing the cut that keeps
    /// the most. Nil when P is not inside the intersection.
    public static func proposal(intersection: Proxy, packet: Packet, excluding earlier: [PolicyEntry]) -> TrafficSelector? {
        let ports = intersection.proto.hasPorts
        var box = TrafficSelector(
            proto: intersection.proto,
            local: largestPrefix(in: intersection.initiatorSide.pattern, containing: packet.source),
            localPorts: ports ? intersection.initiatorSide.ports : .all,
            remote: largestPrefix(in: intersection.responderSide.pattern, containing: packet.destination),
            remotePorts: ports ? intersection.responderSide.ports : .all)
        guard box.contains(packet) else { return nil }
        for entry in earlier where box.overlaps(entry) {
            guard let cut = box.cutting(entry, keeping: packet) else { return nil }
            box = cut
        }
        return box
    }

    /// The largest prefix inside `pattern` holding `address` (which must match it): its
    /// length is the position of the mask's last 1 bit, so every later bit is free.
    public static func largestPrefix(in pattern: AddressPattern, containing address: IPAddress) -> AddressPattern {
        if pattern.prefixLength != nil { return pattern }
        let length = pattern.family.bitWidth - pattern.mask.bits.trailingZeroBitCount
        return AddressPattern(address: address, prefixLength: length) ?? .host(address)
    }

    /// This selector without `entry`, still holding `packet`, cut along the dimension that
    /// keeps the most; nil when `packet` lies in `entry`.
    func cutting(_ entry: PolicyEntry, keeping packet: Packet) -> TrafficSelector? {
        var options: [TrafficSelector] = []
        let packetProto = packet.proto.on(packet.family)
        if proto.isAny, !entry.proto.isAny, entry.proto.on(packet.family) != packetProto {
            var option = self
            option.proto = packetProto
            options.append(option)
        }
        let common = proto.isAny ? packetProto : proto
        if common.hasPorts, entry.proto.on(packet.family) == common || entry.proto.isAny {
            if let port = packet.sourcePort, let ports = Self.range(localPorts, without: entry.localPorts, keeping: port) {
                var option = self
                option.proto = common
                option.localPorts = ports
                options.append(option)
            }
            if let port = packet.destinationPort, let ports = Self.range(remotePorts, without: entry.remotePorts, keeping: port) {
                var option = self
                option.proto = common
                option.remotePorts = ports
                options.append(option)
            }
        }
        if let pattern = entry.local.pattern(for: family), let prefix = Self.prefix(local, without: pattern, keeping: packet.source) {
            var option = self
            option.local = prefix
            options.append(option)
        }
        if let pattern = entry.remote.pattern(for: family),
           let prefix = Self.prefix(remote, without: pattern, keeping: packet.destination) {
            var option = self
            option.remote = prefix
            options.append(option)
        }
        return options.filter { !$0.overlaps(entry) }.max { $0.size < $1.size }
    }

    /// The longest-kept prefix inside `prefix` holding `address` and sharing nothing with
    /// `pattern`: lengthened up to the first bit `pattern` compares that `address` differs in.
    static func prefix(_ prefix: AddressPattern, without pattern: AddressPattern, keeping address: IPAddress) -> AddressPattern? {
        guard let start = prefix.prefixLength else { return nil }
        let width = prefix.family.bitWidth
        for bit in start..<width {
            let value = UInt128(1) << (width - 1 - bit)
            if pattern.mask.bits & value != 0, (pattern.address.bits ^ address.bits) & value != 0 {
                return AddressPattern(address: address, prefixLength: bit + 1)
            }
        }
        return nil
    }

    /// `range` without `other`, holding `port`; nil when `port` lies in `other`.
    static func range(_ range: PortRange, without other: PortRange, keeping port: UInt16) -> PortRange? {
        if other.contains(port) { return nil }
        if other.upper < port { return PortRange(max(range.lower, other.upper + 1), range.upper) }
        return PortRange(range.lower, min(range.upper, other.lower - 1))
    }

    /// `198.18.1.0/24 tcp ports 1024-65535 <-> 198.18.2.0/24 port 443`.
    public var description: String {
        func side(_ pattern: AddressPattern, _ ports: PortRange) -> String {
            hasPorts && !ports.isAll ? "\(pattern) port \(ports)" : "\(pattern)"
        }
        return "\(proto) \(side(local, localPorts)) <-> \(side(remote, remotePorts))"
    }
}

extension Policy {
    /// Whether every outbound packet inside `selector` is first-matched by one permit entry
    /// (as the initiator sees it): the first entry it overlaps is a permit that holds it
    /// whole. A child SA the policy no longer permits so is taken down after a reload.
    public func permitsWholly(_ selector: TrafficSelector) -> Bool {
        for rule in rules where selector.overlaps(rule.entry) {
            let entry = rule.entry
            guard entry.action == .permit, let local = entry.local.pattern(for: selector.family),
                  let remote = entry.remote.pattern(for: selector.family) else { return false }
            return TrafficSelector(proto: entry.proto, local: local, localPorts: entry.localPorts, remote: remote,
                                   remotePorts: entry.remotePorts).contains(selector)
        }
        return false
    }
}
