import NIOCore
import TEDModel
import TEDWire

/// The responder side of TED v3, without I/O: stateless but for its rate limiters.
///
/// A probe is decoded, its identity checked, rate limited (per source, per target, in
/// all), its packet summary mirror-matched against the policy, and a matching permit is
/// answered with the piece of that entry's own share holding P as a proxy (`EntryShare`:
/// without what earlier entries take, so the child the peer then proposes lies inside one
/// of the responder's children and takes no traffic its policy gives elsewhere), plus, on
/// request, further permits of the same IP version that are all their own, while the
/// response stays within three times the probe's size (no amplification, spec section 1). No match and deny stay silent. The responder
/// cookie is a keyed hash of the probe, so a retransmitted probe gets the same bytes.
///
/// A probe the ordinary budgets would not answer may get a challenge instead (when
/// challenges are on and the identity's target budget allows): a cookie sent to its
/// identity. A probe that echoes a good cookie is answered from its identity prefix's
/// proven budget (`ReturnCookies`, `ProbeRateLimiter`), which forged floods never reach.
public struct Responder: Sendable {
    public let identity: Identity
    public private(set) var settings: ResponderSettings

    /// This gateway's addresses changed: identities naming them are refused from now on.
    public mutating func update(peerCheck: PeerAddressCheck) { settings.peerCheck = peerCheck }
    public private(set) var counters = ResponderCounters()

    private let policy: Policy
    private let lookup: any PolicyLookup
    /// Permit rules as responder proxies, per IP version, in policy order; built only when
    /// further entries are offered (at 100k entries they are 200k proxies to build and hold).
    private let offers: [IPAddress.Family: [(ruleIndex: Int, proxy: Proxy)]]
    private var limiter: ProbeRateLimiter
    private var cookies: ReturnCookies
    /// The last reply's entries and bytes, reused for the next: once the caller has let go
    /// of the previous reply (the daemon copies it out at once), a reply allocates nothing.
    private var replyEntries: [Proxy] = []
    private var replyBuffer = ByteBufferAllocator().buffer(capacity: 512)
    /// Entries' shares as computed (each looks up the entries above it), by position and IP
    /// version; bounded, since any probe may ask for any entry.
    private var shares = BoundedLRU<Int, EntryShare>(capacity: Responder.sharesKept)
    static let sharesKept = 4096

    /// `lookup` answers first-match queries over `policy` (default: its linear scan;
    /// the daemon passes a `CompiledPolicy`).
    public init(policy: Policy, lookup: (any PolicyLookup)? = nil, identity: Identity, settings: ResponderSettings) {
        let lookup = lookup ?? policy
        self.policy = policy
        self.lookup = lookup
        self.identity = identity
        self.settings = settings
        var offers: [IPAddress.Family: [(ruleIndex: Int, proxy: Proxy)]] = [:]
        // Only entries that are all their own: a proposal inside one is inside one child.
        for family in [IPAddress.Family.v4, .v6] where settings.offerAdditionalEntries {
            offers[family] = policy.rules.indices.compactMap { position in
                let rule = policy.rules[position]
                guard rule.entry.action == .permit, lookup.share(ofPosition: position, in: policy, family: family) == .whole else { return nil }
                return rule.entry.proxy(as: .responder, family: family).map { (rule.index, $0) }
            }
        }
        self.offers = offers
        self.limiter = ProbeRateLimiter(settings: settings)
        self.cookies = ReturnCookies(secret: settings.challengeSecret, slot: settings.cookieSlot)
    }

    /// Source prefixes that have a token bucket now (at most `maxTrackedSources`).
    public var trackedSources: Int { limiter.trackedSources }
    /// Target prefixes that have a token bucket now (at most `maxTrackedSources`).
    public var trackedTargets: Int { limiter.trackedTargets }

    /// One datagram that arrived on the TED port from `source`:`port`.
    ///
    /// In order: decode; the identity (unmapped once here) and its port; the policy (a
    /// probe no permit covers costs nothing more); a good cookie's proven budget; else the
    /// ordinary budgets, which answer, challenge or stay silent (`ProbeRateLimiter`). An
    /// echoed cookie that is not good is counted and then ignored: the probe is treated
    /// exactly as one without.
    public mutating func received(_ datagram: ByteBuffer, from source: IPAddress, port: UInt16,
                                  now: NIODeadline) -> ResponderAction {
        counters.received += 1
        guard settings.enabled else { return drop(.disabled) }
        let message: Message
        do {
            message = try TEDCodec.decode(datagram)
        } catch {
            return drop(.rejected(error.reason))
        }
        guard case .probe(let probe) = message else { return drop(.notAProbe) }
        let identity = probe.identity.unmapped
        let source = source.unmappedV4
        if let refusal = settings.peerCheck.refusal(of: identity.address, port: identity.effectivePort) {
            return drop(.refusedIdentity(refusal))
        }
        // By position: the entry is read from the policy's plain entries, the rule not copied.
        guard let position = lookup.firstMatchPosition(probe.summary, as: .responder) else { return drop(.noMatch) }
        let entry = policy.entry(at: position)
        guard entry.action == .permit else { return drop(.deny) }
        guard let piece = share(ofPosition: position, family: probe.summary.family).piece(of: entry, holding: probe.summary)
        else { return drop(.unservable) }
        guard let matched = piece.proxy(as: .responder, family: probe.summary.family) else { return drop(.noMatch) }

        var kind = ReplyKind.answer
        if let echoed = probe.cookie {
            switch cookies.verify(echoed, identity: identity, now: now) {
            case .refused(let why): counters.cookiesRefused[why, default: 0] += 1
            case .valid:
                counters.cookiesAccepted += 1
                if limiter.admitProven(identity.address, now: now) { kind = .provenAnswer }
            }
        }
        if kind == .answer {
            let canChallenge = settings.challenges && TEDCodec.challengeSize(cookieSize: ReturnCookies.size) <= datagram.readableBytes
            switch limiter.admit(from: source, to: identity.address, canChallenge: canChallenge, now: now) {
            case .answer: break
            case .refuse(let reason): return drop(reason)
            case .challenge(let reason):
                guard let cookie = cookies.make(identity: identity, now: now) else { return drop(reason) }
                return challenge(probe, identity: identity, cookie: cookie)
            }
        }
        var entries = replyEntries
        replyEntries = []
        entries.removeAll(keepingCapacity: true)
        entries.append(matched)
        if settings.offerAdditionalEntries, probe.capabilities.contains(.multipleEntries) {
            let limit = min(settings.effectiveMaxEntries,
                            TEDCodec.entriesWithinAmplificationBound(probeSize: datagram.readableBytes,
                                                                     identity: self.identity.address.family,
                                                                     family: probe.summary.family))
            let ruleIndex = policy.rules[position].index
            for offer in offers[probe.summary.family] ?? [] where entries.count < limit {
                if offer.ruleIndex != ruleIndex, !entries.contains(offer.proxy) { entries.append(offer.proxy) }
            }
        }
        let response = Response(initiatorCookie: probe.initiatorCookie,
                                responderCookie: cookie(for: probe, identity: identity, source: source, port: port),
                                capabilities: .ted, identity: self.identity, entries: entries)
        counters.replies += 1
        replyBuffer.clear()
        TEDCodec.encode(.response(response), into: &replyBuffer)
        replyEntries = entries
        return .reply(bytes: replyBuffer, to: identity.address, port: identity.effectivePort, kind: kind)
    }

    /// A challenge to the probe's identity, which the budgets have already charged for.
    private mutating func challenge(_ probe: Probe, identity: Identity, cookie: ReturnCookie) -> ResponderAction {
        counters.challenges += 1
        replyBuffer.clear()
        TEDCodec.encode(.challenge(Challenge(initiatorCookie: probe.initiatorCookie, cookie: cookie)), into: &replyBuffer)
        return .reply(bytes: replyBuffer, to: identity.address, port: identity.effectivePort, kind: .challenge)
    }

    private mutating func share(ofPosition position: Int, family: IPAddress.Family) -> EntryShare {
        let key = position << 1 | (family == .v4 ? 0 : 1)
        if let known = shares.use(key) { return known }
        let share = lookup.share(ofPosition: position, in: policy, family: family)
        shares.insert(share, for: key)
        return share
    }

    /// SipHash-2-4 under the secret of everything that identifies the probe, never zero.
    private func cookie(for probe: Probe, identity: Identity, source: IPAddress, port: UInt16) -> Cookie {
        var hash = SipHash24(k0: settings.secret.k0, k1: settings.secret.k1)
        hash.append(bigEndian: probe.initiatorCookie)
        let summary = probe.summary
        hash.append(summary.family.rawValue)
        hash.append(summary.proto.number)
        hash.append((summary.sourcePort == nil ? 0 : 1) | (summary.destinationPort == nil ? 0 : 2))
        hash.append(bigEndian: summary.sourcePort ?? 0)
        hash.append(bigEndian: summary.destinationPort ?? 0)
        hash.append(summary.source)
        hash.append(summary.destination)
        hash.append(source.family.rawValue)
        hash.append(source)
        hash.append(bigEndian: port)
        hash.append(identity.address.family.rawValue)
        hash.append(identity.address)
        hash.append(bigEndian: identity.port)
        hash.append(bigEndian: probe.capabilities.rawValue)
        if let proxy = probe.proxyAddress {
            hash.append(proxy.pattern.family.rawValue)
            hash.append(proxy.pattern.address)
            hash.append(proxy.pattern.mask)
            hash.append(proxy.proto.number)
        } else {
            hash.append(0)
        }
        let value = hash.finalize()
        return value == 0 ? 1 : value
    }

    private mutating func drop(_ reason: DropReason) -> ResponderAction {
        counters.drops[reason, default: 0] += 1
        return .drop(reason)
    }
}
