import TEDModel

/// Why an identity address can never be a TED peer (hostile-network rule: ted never
/// sends a response, or hands a tunnel, to such an address).
public enum IdentityRefusal: String, Hashable, Sendable, CaseIterable {
    /// 0.0.0.0/8 or `::`.
    case unspecified
    /// 127.0.0.0/8 or `::1`, unless ted itself listens on loopback.
    case loopback
    /// 224.0.0.0/4 or ff00::/8.
    case multicast
    /// 255.255.255.255 or the broadcast address of one of this gateway's subnets.
    case broadcast
    /// 169.254.0.0/16 or fe80::/10: meaningless without an interface.
    case linkLocal
    /// One of this gateway's own addresses.
    case ownAddress
    /// A port below 1024 other than ISAKMP's 500 (0 stands for 500): a well-known
    /// service such as DNS or NTP, never a TED peer.
    case privilegedPort
}

/// The addresses of this gateway that an identity must not name; filled in by the daemon
/// from its interfaces, so the engine stays free of I/O.
public struct PeerAddressCheck: Hashable, Sendable {
    /// This gateway's own addresses.
    public var own: Set<IPAddress>
    /// Subnet broadcast addresses of this gateway's interfaces.
    public var broadcasts: Set<IPAddress>
    /// Whether loopback identities are allowed (ted listens on loopback: tests, `ted demo`).
    public var allowLoopback: Bool

    public init(own: Set<IPAddress> = [], broadcasts: Set<IPAddress> = [], allowLoopback: Bool = false) {
        self.own = own
        self.broadcasts = broadcasts
        self.allowLoopback = allowLoopback
    }

    /// Why an identity at `address`:`port` (its effective port) may not be a peer, or nil
    /// when it may.
    public func refusal(of address: IPAddress, port: UInt16) -> IdentityRefusal? {
        if port < 1024, port != 500 { return .privilegedPort }
        return refusal(of: address)
    }

    /// Why `address` (unmapped) may not be a peer, or nil when it may.
    public func refusal(of address: IPAddress) -> IdentityRefusal? {
        if let special = Self.specialRange(of: address), special != .loopback || !allowLoopback { return special }
        // A loopback address is one of ours too; it got here only because loopback is allowed.
        if own.contains(address), Self.specialRange(of: address) != .loopback { return .ownAddress }
        if broadcasts.contains(address) { return .broadcast }
        return nil
    }

    /// The refusal that follows from the address alone.
    static func specialRange(of address: IPAddress) -> IdentityRefusal? {
        switch address.family {
        case .v4:
            let bits = UInt32(truncatingIfNeeded: address.bits)
            if address.isLoopback { return .loopback }
            switch bits >> 24 {
            case 0: return .unspecified
            case 224...239: return .multicast
            default: break
            }
            if bits == 0xffff_ffff { return .broadcast }
            if bits >> 16 == 0xa9fe { return .linkLocal }
            return nil
        case .v6:
            if address.bits == 0 { return .unspecified }
            if address.isLoopback { return .loopback }
            if address.bits >> 120 == 0xff { return .multicast }
            if address.bits >> 118 == 0x3fa { return .linkLocal }
            return nil
        }
    }
}

extension IPAddress {
    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it names.
    public var unmappedV4: IPAddress {
        guard family == .v6, bits >> 32 == 0xffff else { return self }
        return IPAddress(v4: UInt32(truncatingIfNeeded: bits))
    }
}
