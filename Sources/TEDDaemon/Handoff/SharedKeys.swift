import TEDConfig
import TEDModel

/// An IKE pre-shared key as ted loads it into charon (`load-shared`).
public struct SharedKey: Hashable, Sendable {
    /// charon's unique id for the key: `ted-psk` (the group key) or `ted-psk-<n>` (the
    /// key of the n-th peer that has one).
    public var id: String
    public var secret: String
    /// The identities that may authenticate with it; empty means any identity.
    public var owners: [String]

    public init(id: String, secret: String, owners: [String]) {
        self.id = id
        self.secret = secret
        self.owners = owners
    }

    public static let idPrefix = "ted-psk"
}

/// Which keys a configuration loads, and who owns each.
///
/// charon 5.9 takes a shared key when the identity of *either* end matches one of its
/// owners (and prefers the best match), so an owner that holds this gateway's own
/// identity would let the key serve any peer at all. Owners are therefore the peer
/// prefixes with this gateway's identity cut out (the prefix split into the subnets
/// beside it). A peer's own key (`peers[].psk`) is owned by its prefix; the group key
/// (`ike.psk`) by the prefixes of the peers without a key of their own (the configuration
/// refuses a group key without peers: no key is ever owned by any identity).
public enum SharedKeys {
    public static func plan(_ configuration: Configuration) -> [SharedKey] {
        let identity = configuration.identity
        var keys: [SharedKey] = []
        for (index, key) in configuration.peerKeys.enumerated() {
            // A prefix that is only this gateway owns nothing; charon would read no owners as any identity.
            let owners = owners(key.identity, excluding: identity)
            if !owners.isEmpty { keys.append(SharedKey(id: "\(SharedKey.idPrefix)-\(index + 1)", secret: key.secret, owners: owners)) }
        }
        guard case .psk(let secret)? = configuration.ike?.authentication else { return keys }
        let keyed = Set(configuration.peerKeys.map(\.identity))
        let groupOwners = configuration.peers.filter { !keyed.contains($0.identity) }
            .flatMap { owners($0.identity, excluding: identity) }
        if !groupOwners.isEmpty { keys.append(SharedKey(id: SharedKey.idPrefix, secret: secret, owners: groupOwners)) }
        return keys
    }

    /// `prefix` as charon identities, without `identity`: the prefix itself when it does
    /// not hold `identity`, else the sibling subnets along the path down to it (at most
    /// 32 or 128). A pattern that is not a prefix owns nothing (charon has no such identity).
    public static func owners(_ prefix: AddressPattern, excluding identity: IPAddress) -> [String] {
        guard let length = prefix.prefixLength else { return [] }
        guard prefix.contains(identity) else { return [text(prefix.address, length)] }
        let width = identity.family.bitWidth
        return (length..<width).compactMap { bit in
            let flipped = IPAddress(family: identity.family, bits: identity.bits ^ (UInt128(1) << (width - 1 - bit)))
            guard let sibling = AddressPattern(address: flipped, prefixLength: bit + 1) else { return nil }
            return text(sibling.address, bit + 1)
        }
    }

    /// charon's spelling: a bare address for a host, `A/len` for a subnet.
    private static func text(_ address: IPAddress, _ length: Int) -> String {
        length == address.family.bitWidth ? "\(address)" : "\(address)/\(length)"
    }
}
