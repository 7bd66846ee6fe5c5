import TEDModel

/// A connection ted asks the IKE daemon to load: one IKE peer, one child.
public struct IKEConnection: Hashable, Sendable {
    public var name: String
    public var localAddress: String
    /// The peer's address, or `%any` for a responder-only connection.
    public var remoteAddress: String
    public var proposals: [String]
    public var espProposals: [String]
    public var localID: String
    public var remoteID: String
    public var childName: String
    public var localTS: [String]
    public var remoteTS: [String]

    public init(name: String, localAddress: String, remoteAddress: String, proposals: [String], espProposals: [String],
                localID: String, remoteID: String, childName: String, localTS: [String], remoteTS: [String]) {
        self.name = name
        self.localAddress = localAddress
        self.remoteAddress = remoteAddress
        self.proposals = proposals
        self.espProposals = espProposals
        self.localID = localID
        self.remoteID = remoteID
        self.childName = childName
        self.localTS = localTS
        self.remoteTS = remoteTS
    }
}

/// An IKE or child SA going up or down, as the IKE daemon reports it.
public struct IKEEvent: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case ikeUp, ikeDown, childUp, childDown
    }
    public var kind: Kind
    /// The connection's name.
    public var connection: String
    public var remoteAddress: String?

    public init(kind: Kind, connection: String, remoteAddress: String?) {
        self.kind = kind
        self.connection = connection
        self.remoteAddress = remoteAddress
    }
}

/// What ted needs from an IKE daemon (strongSwan over VICI in production).
public protocol IKEController: Sendable {
    func loadSharedKey(_ secret: String) async throws
    func loadCertificates(certificate: String, privateKey: String, caCertificate: String) async throws
    func loadConnection(_ connection: IKEConnection, authentication: IKEAuthentication) async throws
    func initiate(child: String, ike: String, timeoutMilliseconds: Int) async throws
    func unloadConnection(_ name: String) async throws
    /// IKE and child up/down events until the controller closes.
    func events() async throws -> AsyncStream<IKEEvent>
    func close() async
}

/// How both ends authenticate.
public enum IKEAuthentication: Hashable, Sendable {
    case psk
    /// Certificates: our certificate file name as loaded, trusted through the CA.
    case pubkey(certificate: String)
}
