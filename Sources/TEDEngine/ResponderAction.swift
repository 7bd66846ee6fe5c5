import NIOCore
import TEDModel
import TEDWire

/// What the daemon driver must do with one datagram that reached the responder.
public enum ResponderAction: Hashable, Sendable {
    /// Send `bytes` from the TED port to the probe's identity address and port: a response,
    /// or a challenge (never larger than the probe it answers).
    case reply(bytes: ByteBuffer, to: IPAddress, port: UInt16, kind: ReplyKind)
    /// Send nothing.
    case drop(DropReason)
}

/// What a reply is, and what the responder knows of the identity it goes to.
public enum ReplyKind: Hashable, Sendable {
    /// A response to a probe whose identity proved nothing.
    case answer
    /// A response to a probe that echoed a good cookie: its sender receives what is sent
    /// to its identity.
    case provenAnswer
    /// A challenge (exchange 242) instead of a response.
    case challenge
}

/// Why the responder stayed silent; each is counted.
public enum DropReason: Hashable, Sendable, CustomStringConvertible {
    /// The datagram did not decode (spec section 3).
    case rejected(DecodeError.Reason)
    /// A well-formed response: the responder only answers probes.
    case notAProbe
    /// No rule matches the mirrored summary.
    case noMatch
    /// The first matching rule is a deny.
    case deny
    /// The first matching rule is a permit, but its own share (without what earlier
    /// entries take, `EntryShare`) holds no IKE child for P.
    case unservable
    /// The source prefix used up its tokens.
    case rateLimitedSource
    /// The target (identity) prefix used up its tokens.
    case rateLimitedTarget
    /// All sources together used up the global tokens.
    case rateLimitedGlobal
    /// The probe's identity can never be a peer.
    case refusedIdentity(IdentityRefusal)
    /// Responding is switched off.
    case disabled

    /// Whether a probe dropped for this reason, intercepted on its way to a host behind
    /// this gateway, goes on towards that host: this gateway is not the one that covers P,
    /// so the next gateway on the path may be (patent: the first responder on the path
    /// whose policy covers P answers). A probe this gateway covers but will not answer now
    /// (a rate limit) stops here: passing a flood on would only spread it over the hosts
    /// behind (and their ICMP errors back over the tunnels).
    public var passesOn: Bool {
        switch self {
        case .noMatch, .deny, .unservable, .disabled: true
        case .rejected, .notAProbe, .refusedIdentity, .rateLimitedSource, .rateLimitedTarget, .rateLimitedGlobal: false
        }
    }

    public var description: String {
        switch self {
        case .rejected(let reason): "rejected: \(reason.rawValue)"
        case .notAProbe: "not a probe"
        case .noMatch: "no match"
        case .deny: "deny"
        case .unservable: "unservable: earlier entries leave no child for it"
        case .rateLimitedSource: "rate limited (source)"
        case .rateLimitedTarget: "rate limited (target)"
        case .rateLimitedGlobal: "rate limited (global)"
        case .refusedIdentity(let why): "refused identity: \(why.rawValue)"
        case .disabled: "disabled"
        }
    }
}

/// Running totals of a responder.
public struct ResponderCounters: Hashable, Sendable {
    public var received = 0
    public var replies = 0
    public var drops: [DropReason: Int] = [:]
    /// Challenges sent instead of a rate-limited drop (not counted in `replies` or `drops`).
    public var challenges = 0
    /// Probes whose echoed cookie was taken.
    public var cookiesAccepted = 0
    /// Echoed cookies refused, by why; the probe then went on as one without a cookie.
    public var cookiesRefused: [CookieRefusal: Int] = [:]

    public init() {}

    /// All drops, whatever the reason.
    public var totalDrops: Int { drops.values.reduce(0, +) }
}
