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
/// A probe the rate limits refuse gets a challenge instead of silence (when its summary
/// meets a permit and the challenge budget allows): a cookie sent to its identity. A
/// probe that echoes a good cookie skips those limits for a bucket of its proven identity
/// (`ReturnCookies`), which forged floods without the cookie never reach.
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
    private var challengeBucket: TokenBucket?
    /// Buckets of identities proven by a good cookie, by identity address.
    private var proven: BoundedLRU<IPAddress, TokenBucket>
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
        self.limiter = ProbeRateLimiter(perSource: settings.perSourceRate, perTarget: settings.perTargetRate,
                                        global: settings.globalRate, maxTracked: settings.effectiveMaxTrackedSources)
        self.cookies = ReturnCookies(secret: settings.challengeSecret, slot: settings.cookieSlot)
        self.proven = BoundedLRU(capacity: settings.effectiveMaxTrackedSources)
    }

    /// Source prefixes that have a token bucket now (at most `maxTrackedSources`).
    public var trackedSources: Int { limiter.trackedSources }
    /// Target prefixes that have a token bucket now (at most `maxTrackedSources`).
    public var trackedTargets: Int { limiter.trackedTargets }

    /// One datagram that arrived on the TED port from `source`:`port`.
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
        if let refusal = settings.peerCheck.refusal(of: probe.identity.address) { return drop(.refusedIdentity(refusal)) }
        if let echoed = probe.cookie {
            switch cookies.verify(echoed, identity: probe.identity, source: source, initiatorCookie: probe.initiatorCookie,
                                  now: now) {
            case .refused(let why): return drop(.badCookie(why))
            case .valid: counters.cookiesAccepted += 1
            }
            guard admitProven(probe.identity.address, now: now) else { return drop(.rateLimitedProven) }
        } else {
            switch limiter.admit(from: source, to: probe.identity.address, now: now) {
            case .allowed: break
            case .sourceLimited: return challenge(probe, size: datagram.readableBytes, source: source, now: now, else: .rateLimitedSource)
            case .targetLimited: return challenge(probe, size: datagram.readableBytes, source: source, now: now, else: .rateLimitedTarget)
            case .globalLimited: return challenge(probe, size: datagram.readableBytes, source: source, now: now, else: .rateLimitedGlobal)
            }
        }
        // By position: the entry is read from the policy's plain entries, the rule not copied.
        guard let position = lookup.firstMatchPosition(probe.summary, as: .responder) else { return drop(.noMatch) }
        let entry = policy.entry(at: position)
        guard entry.action == .permit else { return drop(.deny) }
        guard let piece = share(ofPosition: position, family: probe.summary.family).piece(of: entry, holding: probe.summary)
        else { return drop(.unservable) }
        guard let matched = piece.proxy(as: .responder, family: probe.summary.family) else {
            return drop(.noMatch)
        }
        var entries = replyEntries
        replyEntries = []
        entries.removeAll(keepingCapacity: true)
        entries.append(matched)
        if settings.offerAdditionalEntries, probe.capabilities.contains(.multipleEntries) {
            let limit = min(settings.effectiveMaxEntries,
                            TEDCodec.entriesWithinAmplificationBound(probeSize: datagram.readableBytes,
                                                                     identity: identity.address.family,
                                                                     family: probe.summary.family))
            let ruleIndex = policy.rules[position].index
            for offer in offers[probe.summary.family] ?? [] where entries.count < limit {
                if offer.ruleIndex != ruleIndex, !entries.contains(offer.proxy) { entries.append(offer.proxy) }
            }
        }
        let response = Response(initiatorCookie: probe.initiatorCookie,
                                responderCookie: cookie(for: probe, source: source, port: port),
                                capabilities: .ted, identity: identity, entries: entries)
        counters.replies += 1
        replyBuffer.clear()
        TEDCodec.encode(.response(response), into: &replyBuffer)
        replyEntries = entries
        return .reply(bytes: replyBuffer, to: probe.identity.address, port: probe.identity.effectivePort)
    }

    /// A challenge for a probe the limits refused, or the drop `reason` when challenges are
    /// off, their budget is spent, no permit covers the summary (another gateway on the
    /// path may, and must see the probe without a cookie it cannot read), or the challenge
    /// would be larger than the probe.
    private mutating func challenge(_ probe: Probe, size: Int, source: IPAddress, now: NIODeadline,
                                    else reason: DropReason) -> ResponderAction {
        guard settings.challenges else { return drop(reason) }
        var budget = challengeBucket ?? TokenBucket(limit: settings.challengeRate, now: now)
        defer { challengeBucket = budget }
        guard budget.hasToken(limit: settings.challengeRate, now: now) else { return drop(reason) }
        // Charged before the lookup, so that the budget bounds the lookups too.
        budget.take()
        guard let position = lookup.firstMatchPosition(probe.summary, as: .responder),
              policy.entry(at: position).action == .permit,
              let cookie = cookies.make(identity: probe.identity, source: source,
                                        initiatorCookie: probe.initiatorCookie, now: now),
              TEDCodec.challengeSize(cookieSize: cookie.bytes.count) <= size
        else { return drop(reason) }
        counters.challenges += 1
        replyBuffer.clear()
        TEDCodec.encode(.challenge(Challenge(initiatorCookie: probe.initiatorCookie, cookie: cookie)), into: &replyBuffer)
        return .reply(bytes: replyBuffer, to: probe.identity.address, port: probe.identity.effectivePort)
    }

    /// Takes a token of the proven identity's own bucket.
    private mutating func admitProven(_ identity: IPAddress, now: NIODeadline) -> Bool {
        var bucket = proven.use(identity) ?? TokenBucket(limit: settings.provenRate, now: now)
        defer { proven.insert(bucket, for: identity) }
        guard bucket.hasToken(limit: settings.provenRate, now: now) else { return false }
        bucket.take()
        return true
    }

    private mutating func share(ofPosition position: Int, family: IPAddress.Family) -> EntryShare {
        let key = position << 1 | (family == .v4 ? 0 : 1)
        if let known = shares.use(key) { return known }
        let share = lookup.share(ofPosition: position, in: policy, family: family)
        shares.insert(share, for: key)
        return share
    }

    /// SipHash-2-4 under the secret of everything that identifies the probe, never zero.
    private func cookie(for probe: Probe, source: IPAddress, port: UInt16) -> Cookie {
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
        hash.append(probe.identity.address.family.rawValue)
        hash.append(probe.identity.address)
        hash.append(bigEndian: probe.identity.port)
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
