import Logging
import TEDConfig
import TEDModel
import TEDVici

/// The connections that let peers start IKE to this gateway (pure: the hand-off loads them).
///
/// Their children are the permit entries' own shares, per IP version (`EntryShare`): a
/// child never holds traffic an earlier entry owns. Without `peers`, one `%any`
/// connection. With `peers`, one connection per prefix where an entry decides (the most
/// specific entry holding an address, `[PeerAuthorization].region`): `remote_addrs` is that
/// prefix, the peer's identity is pinned to it too (a key's owner or a certificate's
/// address: ted's identities are IP addresses, in the certificate as its SAN), and the children
/// reach no further on the peer's side than that entry's `protects`. So an initiator gets
/// over IKE only what its own authorisation lets it protect, whichever key it used.
enum ResponderConnections {
    static let namePrefix = "ted-responder"
    /// How the responder connections' child configs begin (`ted-r<entry>-v4...`).
    static let childPrefix = "ted-r"

    struct Plan {
        var connections: [IKEConnection] = []
        /// What could not be offered, with why: logged by the hand-off.
        var warnings: [(message: String, metadata: Logger.Metadata)] = []
    }

    /// A child a peer may start: a piece of a permit entry's own share.
    private struct Share {
        let name: String
        let entry: PolicyEntry
        let family: IPAddress.Family
    }

    /// The most prefixes one `peers` entry's region becomes (one connection each).
    static let maxPrefixesPerPeer = 64

    static func plan(_ configuration: Configuration, lookup: any PolicyLookup) -> Plan {
        var plan = Plan()
        let shares = shares(configuration.policy, lookup: lookup, warnings: &plan.warnings)
        guard let options = configuration.ike, !shares.isEmpty else { return plan }
        func connection(_ name: String, remote: String, remoteID: String, children: [IKEChild]) -> IKEConnection {
            IKEConnection(name: name, localAddress: "\(configuration.identity)", remoteAddress: remote,
                          proposals: options.proposals, espProposals: options.espProposals,
                          localID: "\(configuration.identity)", remoteID: remoteID, children: children)
        }
        let peers = configuration.peers
        if peers.isEmpty {
            let children = shares.compactMap { child($0, within: nil, warnings: &plan.warnings) }
            if !children.isEmpty { plan.connections.append(connection(namePrefix, remote: "%any", remoteID: "%any", children: children)) }
            return plan
        }
        for index in peers.indices {
            let region = peers.region(of: index, excluding: [.host(configuration.identity)])
            guard let prefixes = Self.prefixes(region) else {
                plan.warnings.append(("peers entry is too many prefixes to start IKE from; it cannot start IKE to this gateway",
                                      ["ted.peer": "\(peers[index].identity)", "ted.limit": "\(maxPrefixesPerPeer)"]))
                continue
            }
            let protects = peers[index].protects
            let children = shares.flatMap { share in
                (protects.map { $0.map(Optional.some) } ?? [nil]).enumerated().compactMap { offset, prefix in
                    child(share, within: prefix, suffix: (protects?.count ?? 1) > 1 ? "-\(offset + 1)" : "", warnings: &plan.warnings)
                }
            }
            guard !children.isEmpty else { continue }
            for (offset, prefix) in prefixes.enumerated() {
                let remote = "\(prefix)"
                plan.connections.append(connection("\(namePrefix)-p\(index + 1)" + (prefixes.count > 1 ? "-\(offset + 1)" : ""),
                                                   remote: remote, remoteID: SharedKeys.text(prefix.address, prefix.prefixLength ?? 0),
                                                   children: children))
            }
        }
        return plan
    }

    /// Every permit entry's own share as pieces, per IP version.
    private static func shares(_ policy: Policy, lookup: any PolicyLookup, warnings: inout [(message: String, metadata: Logger.Metadata)]) -> [Share] {
        var shares: [Share] = []
        for (position, rule) in policy.rules.enumerated() where rule.entry.action == .permit {
            for family in rule.entry.families {
                let name = "\(childPrefix)\(rule.index)-\(family == .v4 ? "v4" : "v6")"
                switch lookup.share(ofPosition: position, in: policy, family: family) {
                case .whole: shares.append(Share(name: name, entry: rule.entry, family: family))
                case .pieces(let own):
                    shares += own.enumerated().map { Share(name: "\(name)-\($0.offset + 1)", entry: $0.element, family: family) }
                case .fragmented:
                    warnings.append(("policy entry without the earlier entries it overlaps is too many pieces; peers cannot start IKE for it",
                                     ["ted.entry": "\(rule.index)", "ted.limit": "\(EntryShare.maxPieces)"]))
                }
            }
        }
        return shares
    }

    /// A share as a child, its peer's side (the remote half) cut to `prefix`; nil when
    /// nothing of it is left there.
    private static func child(_ share: Share, within prefix: AddressPattern?, suffix: String = "",
                              warnings: inout [(message: String, metadata: Logger.Metadata)]) -> IKEChild? {
        var entry = share.entry
        if let prefix {
            guard let remote = entry.remote.pattern(for: share.family)?.intersection(prefix) else { return nil }
            entry = PolicyEntry(action: entry.action, proto: entry.proto, local: entry.local, localPorts: entry.localPorts,
                                remote: .pattern(remote), remotePorts: entry.remotePorts)
        }
        guard let selectors = TrafficSelectors.responderChild(entry: entry, family: share.family) else {
            warnings.append(("policy entry needs more IKE selectors than a child may list; peers cannot start IKE for it",
                             ["ted.child": "\(share.name)\(suffix)", "ted.limit": "\(TrafficSelectors.maxResponderSelectors)"]))
            return nil
        }
        return IKEChild(name: share.name + suffix, localTS: selectors.local, remoteTS: selectors.remote)
    }

    /// A region as prefixes (`remote_addrs` holds prefixes); nil when too many.
    private static func prefixes(_ region: [AddressPattern]) -> [AddressPattern]? {
        var result: [AddressPattern] = []
        for piece in region {
            guard let prefixes = piece.prefixes(limit: maxPrefixesPerPeer) else { return nil }
            result += prefixes
        }
        return result.count <= maxPrefixesPerPeer ? result : nil
    }
}
