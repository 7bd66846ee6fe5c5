/// Who may answer as a peer, and for what (`peers:` in the configuration).
///
/// A response is taken only from an identity inside `identity`, and only when every
/// entry's responder side lies inside one of `protects`; `protects` nil (a bare prefix,
/// or no `peers` at all) lets such a peer claim anything.
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

    public var description: String {
        protects.map { "\(identity) protects \($0.map(\.description).joined(separator: ", "))" } ?? "\(identity) (may claim anything)"
    }
}
