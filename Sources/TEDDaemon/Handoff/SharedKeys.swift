import TEDConfig
import TEDModel
import TEDVici

/// Which keys a configuration loads, and who owns each.
///
/// A key is owned by exactly the identities it is meant for, so no identity has two keys
/// (charon tries every key an identity matches, so a group key owned beside a peer's own
/// key would let any group member authenticate as that peer):
/// - a peer's own key (`peers[].psk`) by the addresses where its entry decides (the most
///   specific entry holding them, `[PeerAuthorization].region`);
/// - the group key (`ike.psk`) by the regions of the entries without a key of their own
///   (the configuration refuses a group key without peers: no key is ever owned by any
///   identity).
/// charon 5.9 takes a shared key when the identity of *either* end matches one of its
/// owners, so an owner that held this gateway's own identity would let the key serve any
/// peer at all: regions leave that address out (the prefix split into the subnets beside
/// it). Owners are prefixes, as charon names identities: a wildcard piece owns nothing.
public enum SharedKeys {
    public static func plan(_ configuration: Configuration) -> [SharedKey] {
        let peers = configuration.peers
        let me = AddressPattern.host(configuration.identity)
        func owners(_ index: Int) -> [String] {
            peers.region(of: index, excluding: [me]).compactMap { piece in piece.prefixLength.map { text(piece.address, $0) } }
        }
        var keys: [SharedKey] = []
        var keyed = Set<Int>()
        for (number, key) in configuration.peerKeys.enumerated() {
            guard let index = peers.firstIndex(where: { $0.identity == key.identity }) else { continue }
            keyed.insert(index)
            // An entry that decides for no address but this gateway owns nothing; charon would read no owners as any identity.
            let owners = owners(index)
            if !owners.isEmpty { keys.append(SharedKey(id: "\(SharedKey.idPrefix)-\(number + 1)", secret: key.secret, owners: owners)) }
        }
        guard case .psk(let secret)? = configuration.ike?.authentication else { return keys }
        let groupOwners = peers.indices.filter { !keyed.contains($0) }.flatMap(owners)
        if !groupOwners.isEmpty { keys.append(SharedKey(id: SharedKey.idPrefix, secret: secret, owners: groupOwners)) }
        return keys
    }

    /// charon's spelling: a bare address for a host, `A/len` for a subnet.
    static func text(_ address: IPAddress, _ length: Int) -> String {
        length == address.family.bitWidth ? "\(address)" : "\(address)/\(length)"
    }
}
