extension Packet {
    /// The summary of an IP datagram read from its first bytes: the IPv4 or IPv6 header
    /// (IPv6 extension headers skipped), then the transport header's ports; for ICMP the
    /// "ports" are type and code, as in an ACQUIRE. A fragment other than the first, or a
    /// transport header beyond `bytes`, gives no ports. Nil when `bytes` do not hold an IP
    /// header (or end inside IPv6 extension headers): every byte is read through
    /// bounds-checked offsets (the bytes come from the network).
    public init?(ipHeader bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard let first = bytes.first else { return nil }
        let transport: (proto: UInt8, offset: Int, firstFragment: Bool)
        let source: IPAddress?, destination: IPAddress?
        switch first >> 4 {
        case 4:
            guard bytes.count >= 20 else { return nil }
            let headerLength = Int(first & 0x0f) * 4
            guard headerLength >= 20 else { return nil }
            let fragmentOffset = (UInt16(bytes[6] & 0x1f) << 8) | UInt16(bytes[7])
            source = IPAddress(bytes: bytes[12..<16])
            destination = IPAddress(bytes: bytes[16..<20])
            transport = (bytes[9], headerLength, fragmentOffset == 0)
        case 6:
            guard bytes.count >= 40 else { return nil }
            source = IPAddress(bytes: bytes[8..<24])
            destination = IPAddress(bytes: bytes[24..<40])
            guard let found = Self.ipv6Transport(bytes, next: bytes[6], offset: 40) else { return nil }
            transport = found
        default:
            return nil
        }
        // Protocol 0 is "any" in the model; no datagram carries it as its transport.
        guard let source, let destination, transport.proto != 0 else { return nil }
        let proto = IPProtocol(transport.proto)
        var ports: (UInt16, UInt16)?
        if proto.allowsPortSelectors, transport.firstFragment {
            let o = transport.offset
            if proto.isICMP, o + 2 <= bytes.count {
                ports = (UInt16(bytes[o]), UInt16(bytes[o + 1]))
            } else if proto.hasPorts, o + 4 <= bytes.count {
                ports = ((UInt16(bytes[o]) << 8) | UInt16(bytes[o + 1]), (UInt16(bytes[o + 2]) << 8) | UInt16(bytes[o + 3]))
            }
        }
        self.init(proto: proto, source: source, destination: destination, sourcePort: ports?.0, destinationPort: ports?.1)
    }

    /// Walks IPv6 extension headers (hop-by-hop, routing, fragment, destination options)
    /// to the transport protocol; nil when `bytes` end inside them.
    private static func ipv6Transport(_ bytes: [UInt8], next: UInt8, offset: Int) -> (proto: UInt8, offset: Int, firstFragment: Bool)? {
        var next = next, offset = offset, firstFragment = true
        for _ in 0..<8 {
            switch next {
            case 0, 43, 60:
                guard offset + 2 <= bytes.count else { return nil }
                let length = (Int(bytes[offset + 1]) + 1) * 8
                next = bytes[offset]
                offset += length
            case 44:
                guard offset + 8 <= bytes.count else { return nil }
                let fragmentOffset = (UInt16(bytes[offset + 2]) << 5) | UInt16(bytes[offset + 3] >> 3)
                firstFragment = firstFragment && fragmentOffset == 0
                next = bytes[offset]
                offset += 8
            default:
                return (next, offset, firstFragment)
            }
        }
        return nil
    }
}
