import TEDModel

/// A reproducible header trace for the responder's lookups: 90% a random point inside a
/// random rule, 10% uniformly random (a random protocol, TCP, UDP, ICMP or any number
/// 1-255 with even odds, with random IPv4 addresses and ports).
public enum LookupTrace {
    /// For a ClassBench set.
    public static func packets(rules: [ClassBenchRule], count: Int, seed: UInt64) -> [Packet] {
        packets(count: count, seed: seed, rules: rules.count) { rules[$0].packet(using: &$1) }
    }

    /// For a policy's entries, as the responder sees them (the remote side sends to the local side).
    public static func packets(policy: Policy, count: Int, seed: UInt64) -> [Packet] {
        packets(count: count, seed: seed, rules: policy.rules.count) { policy.rules[$0].entry.inboundPacket(using: &$1) }
    }

    private static func packets(count: Int, seed: UInt64, rules: Int,
                                inside: (Int, inout SplitMix64) -> Packet?) -> [Packet] {
        var rng = SplitMix64(seed: seed)
        var packets: [Packet] = []
        packets.reserveCapacity(count)
        var misses = 0
        while packets.count < count {
            if rng.next() % 10 == 0 || rules == 0 {
                let proto = [IPProtocol.tcp, .udp, .icmp, IPProtocol(UInt8.random(in: 1...255, using: &rng))][Int(rng.next() % 4)]
                let ports = proto.allowsPortSelectors
                if let packet = Packet(proto: proto, source: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                       destination: IPAddress(v4: UInt32(truncatingIfNeeded: rng.next())),
                                       sourcePort: ports ? UInt16(truncatingIfNeeded: rng.next()) : nil,
                                       destinationPort: ports ? UInt16(truncatingIfNeeded: rng.next()) : nil) {
                    packets.append(packet)
                }
            } else if let packet = inside(Int(rng.next() % UInt64(rules)), &rng) {
                packets.append(packet)
            } else {
                misses += 1
                if misses > 100 * count { break }
            }
        }
        return packets
    }
}

extension PolicyEntry {
    /// A packet from the remote side to the local side inside the entry: random host bits,
    /// random ports inside each range (none for protocols without ports; UDP for `ip`).
    func inboundPacket(using rng: inout some RandomNumberGenerator) -> Packet? {
        let family = self.family ?? .v4
        func host(_ match: AddressMatch) -> IPAddress {
            let pattern = match.pattern(for: family) ?? AddressPattern(family: family, address: 0, mask: 0)
            let random = UInt128(rng.next() as UInt64) | UInt128(rng.next() as UInt64) << 64
            return IPAddress(family: family, bits: pattern.address.bits | (random & ~pattern.mask.bits))
        }
        let proto = self.proto.isAny ? IPProtocol.udp : self.proto
        let source = host(remote), destination = host(local)
        return Packet(proto: proto, source: source, destination: destination,
                      sourcePort: proto.hasPorts ? UInt16.random(in: remotePorts.lower...remotePorts.upper, using: &rng) : nil,
                      destinationPort: proto.hasPorts ? UInt16.random(in: localPorts.lower...localPorts.upper, using: &rng) : nil)
    }
}
