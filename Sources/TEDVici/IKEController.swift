import TEDModel

/// One child SA configuration: its name and traffic selectors.
public struct IKEChild: Hashable, Sendable {
    public var name: String
    public var localTS: [String]
    public var remoteTS: [String]

    public init(name: String, localTS: [String], remoteTS: [String]) {
        self.name = name
        self.localTS = localTS
        self.remoteTS = remoteTS
    }
}

/// A connection ted asks the IKE daemon to load: one IKE peer and its children.
public struct IKEConnection: Hashable, Sendable {
    public var name: String
    public var localAddress: String
    /// The peer's address, or `%any` for a responder-only connection.
    public var remoteAddress: String
    public var proposals: [String]
    public var espProposals: [String]
    public var localID: String
    public var remoteID: String
    /// A discovered tunnel has one child; a responder connection one per permit entry, so
    /// the IKE daemon picks the child whose selectors fit the initiator's proposal.
    public var children: [IKEChild]

    public init(name: String, localAddress: String, remoteAddress: String, proposals: [String], espProposals: [String],
                localID: String, remoteID: String, children: [IKEChild]) {
        self.name = name
        self.localAddress = localAddress
        self.remoteAddress = remoteAddress
        self.proposals = proposals
        self.espProposals = espProposals
        self.localID = localID
        self.remoteID = remoteID
        self.children = children
    }
}

/// An IKE or child SA going up or down, as the IKE daemon reports it.
public struct IKEEvent: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// `childRekey`: `child` is the new child SA, `previousChild` the one it replaced.
        /// `childInstallFailed`: this host's kernel (or libipsec) refused a child SA of the
        /// IKE SA named `connection`; `reason` is charon's own line.
        case ikeUp, ikeDown, childUp, childDown, childRekey, childInstallFailed
    }
    public var kind: Kind
    /// The connection's name.
    public var connection: String
    public var remoteAddress: String?
    /// For child events: the child SA's unique name and its negotiated selectors.
    public var child: String?
    /// For child events: the child's configuration name. charon may put a child of one
    /// connection under an IKE SA of another (equal peer settings), so a child belongs to
    /// the connection its configuration names, not to the IKE SA it arrives under.
    public var childConfig: String?
    public var localTS: [String]
    public var remoteTS: [String]
    /// For `childRekey`: the unique name of the child SA that was replaced.
    public var previousChild: String?
    /// charon's unique id of the IKE SA the event is about (or the child's IKE SA): one
    /// connection (`ted-responder`) holds the IKE SAs of many peers.
    public var ikeID: String?
    /// For `childInstallFailed`: why, as charon logged it.
    public var reason: String?

    public init(kind: Kind, connection: String, remoteAddress: String?, child: String? = nil,
                childConfig: String? = nil, localTS: [String] = [], remoteTS: [String] = [], previousChild: String? = nil,
                ikeID: String? = nil, reason: String? = nil) {
        self.reason = reason
        self.previousChild = previousChild
        self.ikeID = ikeID
        self.childConfig = childConfig
        self.kind = kind
        self.connection = connection
        self.remoteAddress = remoteAddress
        self.child = child
        self.localTS = localTS
        self.remoteTS = remoteTS
    }

    /// The connection a child event belongs to (see `childConfig`).
    public var owner: String { childConfig ?? connection }
}

/// What ted needs from an IKE daemon (strongSwan over VICI in production).
public protocol IKEController: Sendable {
    func loadSharedKey(_ key: SharedKey) async throws
    func unloadSharedKey(id: String) async throws
    /// Ids of the shared keys loaded through this interface.
    func sharedKeyIDs() async throws -> [String]
    /// Loads our certificate, its private key and the CA certificate (file paths); returns
    /// the two certificates as loaded, for the connections that must name them.
    func loadCertificates(_ files: CertificateFiles) async throws -> IKECertificates
    func loadConnection(_ connection: IKEConnection, authentication: IKEAuthentication) async throws
    /// Starts IKE for a loaded connection and returns without waiting for the outcome.
    func initiate(child: String, ike: String) async throws
    func unloadConnection(_ name: String) async throws
    func terminate(ike name: String) async throws
    /// Names of the connections loaded through this interface.
    func connectionNames() async throws -> [String]
    /// Every child SA that is up now, as `childUp` events.
    func childSAs() async throws -> [IKEEvent]
    /// IKE and child up/down events until the controller closes or the IKE daemon goes away.
    func events() async throws -> AsyncStream<IKEEvent>
    func close() async
}

/// What `loadCertificates` loads: the files' contents (PEM or DER), read by the caller.
public struct CertificateFiles: Hashable, Sendable {
    public var certificate: [UInt8]
    public var privateKey: [UInt8]
    public var caCertificate: [UInt8]

    public init(certificate: [UInt8], privateKey: [UInt8], caCertificate: [UInt8]) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.caCertificate = caCertificate
    }
}

/// Our certificate and the CA certificate, as their files hold them (PEM or DER).
public struct IKECertificates: Hashable, Sendable {
    public var certificate: [UInt8]
    public var caCertificate: [UInt8]

    public init(certificate: [UInt8], caCertificate: [UInt8]) {
        self.certificate = certificate
        self.caCertificate = caCertificate
    }
}

/// How both ends authenticate.
public enum IKEAuthentication: Hashable, Sendable {
    case psk
    /// Certificates: we prove our identity with ours; the peer must prove the identity the
    /// connection names with a certificate issued by this CA (and, with charon's addrblock
    /// plugin, may only get selectors inside the address blocks it certifies).
    case pubkey(IKECertificates)
}
