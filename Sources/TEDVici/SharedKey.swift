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
