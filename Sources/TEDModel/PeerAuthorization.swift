/// Who may answer as a peer, and for what (`peers:` in the configuration).
///
/// A response is taken only from an identity inside `identity`, and only when every
/// entry's responder side lies inside one of `protects`; `protects` nil (a bare prefix,
/// or no `peers` at all) lets such a peer claim anything. Where entries overlap, the most
/// specific decides (`[PeerAuthorization].deciding(for:)`).
public struct PeerAuthorization: Hashable, Sendable, CustomStringConvertible {
    public var identity: AddressPattern
    public var protects: [AddressPattern]?

    public init(identity: AddressPattern, protects: [AddressPattern]? = nil) {
        self.identity = identity
        self.protects = protects
    }

    /// Whether this peer may claim to protect `pattern`.
    public func mayProtect(_ pattern: AddressPattern) -> Bool {
        protects.map { prefixes in prefixes.contains { $0.contains(pattern) } } ?? true
    }

    /// How many address bits the identity compares: the more, the more specific.
    public var specificity: Int { identity.mask.bits.nonzeroBitCount }

    public var description: String {
        protects.map { "\(identity) protects \($0.map(\.description).joined(separator: ", "))" } ?? "\(identity) (may claim anything)"
    }
}

/// The `peers` list: for every address the most specific entry holding it decides (the
/// one whose identity compares the most bits; the first listed among equals), for TED
/// claims, IKE keys and the children a peer may get alike. A more specific entry is never
/// widened by a broader one beside it.
extension [PeerAuthorization] {
    /// The position of the entry that decides for `address`; nil when none holds it.
    public func decidingIndex(for address: IPAddress) -> Int? {
        var best: Int?
        for (index, peer) in enumerated() where peer.identity.contains(address) {
            if best.map({ peer.specificity > self[$0].specificity }) ?? true { best = index }
        }
        return best
    }

    /// The entry that decides for `address`; nil when none holds it.
    public func deciding(for address: IPAddress) -> PeerAuthorization? {
        decidingIndex(for: address).map { self[$0] }
    }

    /// Whether entry `other` decides before entry `index` where both hold an address.
    private func precedes(_ other: Int, _ index: Int) -> Bool {
        let (a, b) = (self[other].specificity, self[index].specificity)
        return a > b || (a == b && other < index)
    }

    /// Where entry `index` decides, without `excluding`: its identity less every entry that
    /// decides before it, as disjoint patterns.
    public func region(of index: Int, excluding: [AddressPattern] = []) -> [AddressPattern] {
        let cuts = indices.filter { $0 != index && precedes($0, index) }.map { self[$0].identity } + excluding
        var pieces = [self[index].identity]
        for cut in cuts where cut.family == self[index].identity.family {
            pieces = pieces.flatMap { piece in piece.intersection(cut) == nil ? [piece] : piece.subtracting(cut) }
        }
        return pieces
    }

    /// Pairs of entries whose identities share addresses (first listed first): the most
    /// specific decides where they meet, which an operator should know.
    public var overlappingPairs: [(Int, Int)] {
        indices.flatMap { a in indices.filter { $0 > a && self[a].identity.intersection(self[$0].identity) != nil }.map { (a, $0) } }
    }
}
