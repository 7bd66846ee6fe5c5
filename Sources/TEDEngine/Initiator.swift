import NIOCore
import TEDModel
import TEDWire

/// The initiator side of TED v3 (patent FIG. 2, blocks 202-218), without I/O.
///
/// The driver feeds it packets that need protection, datagrams from the TED socket and
/// the passing of time; it answers with actions. At most one discovery runs per local
/// rule and destination; successes and failures are cached, every table is bounded.
public struct Initiator: Sendable {
    public let identity: Identity
    public private(set) var settings: DiscoverySettings

    /// This gateway's addresses changed (an address added or removed since start, a VRRP
    /// address taken over): identities naming them are refused from now on.
    public mutating func update(peerCheck: PeerAddressCheck) { settings.peerCheck = peerCheck }
    public private(set) var counters = InitiatorCounters()

    private let policy: any PolicyLookup
    private var pending: [FlowKey: PendingDiscovery] = [:]
    private var pendingByCookie: [Cookie: FlowKey] = [:]
    /// Cookies of discoveries that ended, to tell a duplicate answer from a stray one.
    private var finished: BoundedLRU<Cookie, Bool>
    private var cache: DiscoveryCache
    private var failureCache: FailureCache
    private var refutations: RefutationCache
    /// Cookies for this gateway's identity from challenges to probes it did not send (a
    /// flood naming it provokes them), by the challenging responder's address.
    private var learned = BoundedLRU<IPAddress, LearnedCookie>(capacity: Initiator.learnedKept)
    static let learnedKept = 64
    /// How long a learned cookie is echoed: one 10-second slot of ted's responders (a cookie
    /// the responder no longer takes costs nothing: the probe goes on as one without).
    static let learnedLifetime = TimeAmount.seconds(10)
    /// How often learning a cookie from one source offers it to the discoveries in flight.
    static let learnedRefresh = TimeAmount.seconds(1)

    public init(policy: any PolicyLookup, identity: Identity, settings: DiscoverySettings = DiscoverySettings()) {
        self.policy = policy
        self.identity = identity
        self.settings = settings
        self.finished = BoundedLRU(capacity: settings.effectiveMaxPending)
        self.cache = DiscoveryCache(capacity: settings.effectiveMaxCache)
        self.failureCache = FailureCache(capacity: settings.effectiveMaxCache)
        self.refutations = RefutationCache(capacity: settings.effectiveMaxCache)
    }

    /// A packet P that the data plane could not send (blocks 202-212).
    ///
    /// Answers `.notProtected`, `.cached`, `.failedCached`, `.joined`, `.send` (a new
    /// probe) or `.failed(.resourceLimit)`: always exactly one action. `target` sends a
    /// new probe to that address and port instead of P's destination (a path known
    /// out of band, e.g. `ted demo` on loopback); the caches are consulted as usual.
    public mutating func packet(_ p: Packet, to target: (address: IPAddress, port: UInt16)? = nil, now: NIODeadline,
                                rng: inout some RandomNumberGenerator) -> InitiatorAction {
        guard let (rule, localProxy) = localRule(for: p) else { return .notProtected(p) }
        if let discovery = cache.lookup(p, ruleIndex: rule.index, now: now) {
            counters.cacheHits += 1
            return .cached(discovery.answering(p))
        }
        let key = FlowKey(ruleIndex: rule.index, destination: target?.address ?? p.destination,
                          destinationPort: target?.port ?? settings.probePort)
        return start(p, key: key, rule: rule, localProxy: localProxy, consultFailures: true, now: now, rng: &rng)
    }

    /// The failure `packet(p, now:)` would answer P with from the failure cache
    /// (`.failedCached`), or nil; counts nothing and leaves the caches' order alone.
    ///
    /// For the held-packet driver: a packet of a flow known to fail is dropped at once
    /// instead of waiting in the hold for a tunnel that will not come.
    public func knownFailure(of p: Packet, now: NIODeadline) -> Failure? {
        guard let (rule, _) = localRule(for: p), !cache.holds(p, ruleIndex: rule.index, now: now) else { return nil }
        let service = ServiceKey(ruleIndex: rule.index, packet: p, destination: p.destination,
                                 destinationPort: settings.probePort)
        return failureCache.peek(service, now: now)?.failure
    }

    /// An explicit probe for P (`ted probe`), optionally to another address and port.
    ///
    /// Skips both caches but still joins a discovery in flight to the same destination.
    public mutating func probe(_ p: Packet, to target: (address: IPAddress, port: UInt16)? = nil,
                               now: NIODeadline, rng: inout some RandomNumberGenerator) -> InitiatorAction {
        guard let (rule, localProxy) = localRule(for: p) else { return .notProtected(p) }
        let key = FlowKey(ruleIndex: rule.index, destination: target?.address ?? p.destination,
                          destinationPort: target?.port ?? settings.probePort)
        return start(p, key: key, rule: rule, localProxy: localProxy, consultFailures: false, now: now, rng: &rng)
    }

    /// A datagram from the TED socket (blocks 214-218).
    ///
    /// Answers `.discovered`, `.failed`, `.ignored` or `.rejected`, or `.send` (the probe
    /// again, echoing a challenge's cookie): always exactly one action.
    public mutating func received(_ datagram: ByteBuffer, from source: IPAddress, port: UInt16,
                                  now: NIODeadline) -> InitiatorAction {
        let message: Message
        do {
            message = try TEDCodec.decode(datagram)
        } catch {
            return reject(.undecodable(error.reason))
        }
        let response: Response
        switch message {
        case .probe: return reject(.unexpectedProbe)
        case .challenge(let challenge): return answer(challenge, from: source.unmappedV4, now: now)
        case .response(let answer): response = answer.unmapped
        }
        guard let key = pendingByCookie[response.initiatorCookie], let discovery = pending[key] else {
            return ignore(finished.peek(response.initiatorCookie) != nil ? .duplicate : .unknownCookie)
        }
        guard settings.peerCheck.refusal(of: response.identity.address) == nil else { return ignore(.refusedIdentity) }
        guard settings.authorizations(of: response.identity.address) != nil else { return ignore(.peerNotAllowed) }
        guard settings.allows(peer: response.identity.address, claiming: response.entries) else {
            return ignore(.claimNotAllowed)
        }
        guard !refutations.refutes(response.identity.address, discovery.packet, now: now) else { return ignore(.refutedClaim) }
        end(discovery)
        counters.responsesAccepted += 1
        return evaluate(response, for: discovery, source: source, sourcePort: port, now: now)
    }

    /// Retransmissions and timeouts due at `now`, oldest first; expires cache entries.
    public mutating func tick(now: NIODeadline) -> [InitiatorAction] {
        let due = pending.values.filter { $0.nextEvent <= now }
            .sorted { ($0.nextEvent, $0.cookie) < ($1.nextEvent, $1.cookie) }
        var actions: [InitiatorAction] = []
        for var discovery in due {
            switch discovery.step(now: now, learned: learnedCookie(for: discovery.key.destination, now: now)) {
            case .retransmit(let probe):
                pending[discovery.key] = discovery
                counters.retransmits += 1
                actions.append(.send(probe))
            case .echo(let probe):
                pending[discovery.key] = discovery
                counters.challengesAnswered += 1
                actions.append(.send(probe))
            case .timedOut:
                end(discovery)
                actions.append(fail(.timeout, discovery, peer: nil, entries: [], now: now))
            case nil:
                break
            }
        }
        counters.expirations += cache.removeExpired(now: now) + failureCache.removeExpired(now: now)
            + refutations.removeExpired(now: now)
        return actions
    }

    /// When `tick` next has something to do: a retransmission, a timeout or a cache expiry.
    public var nextDeadline: NIODeadline? {
        [pending.values.lazy.map(\.nextEvent).min(), cache.earliestExpiry, failureCache.earliestExpiry, refutations.earliestExpiry]
            .compactMap { $0 }.min()
    }

    /// Drops cached discoveries and failures involving this responder; returns how many.
    @discardableResult
    public mutating func forget(peer: IPAddress) -> Int {
        let count = cache.remove(peer: peer) + failureCache.remove(peer: peer)
        counters.forgotten += count
        return count
    }

    /// IKE did not prove what `peer` claimed for `intersection` (its tunnel never came up):
    /// drops its cached discoveries, and for `negativeTTL` sets aside its responses for
    /// packets inside `intersection` (`.refutedClaim`), so that the discovery waits for
    /// another responder instead of handing the same peer to IKE again. Returns the
    /// cached discoveries dropped.
    @discardableResult
    public mutating func refute(peer: IPAddress, intersection: Proxy, now: NIODeadline) -> Int {
        if settings.effectiveNegativeTTL > .zero,
           refutations.insert(peer: peer, intersection: intersection, expires: now + settings.effectiveNegativeTTL) {
            counters.evictions += 1
        }
        return forget(peer: peer)
    }

    /// Drops cached discoveries whose intersection overlaps `proxy` (a tunnel went down);
    /// returns how many.
    @discardableResult
    public mutating func forget(intersection proxy: Proxy) -> Int {
        let count = cache.remove(overlapping: proxy)
        counters.forgotten += count
        return count
    }

    /// Discoveries in flight (cheap, for gauges; `snapshot` copies the tables).
    public var pendingCount: Int { pending.count }
    /// Entries in the discovery cache.
    public var cacheCount: Int { cache.count }
    /// Entries in the failure cache.
    public var failureCount: Int { failureCache.count }
    /// Refutations held (expired ones go at the next `tick`).
    public var refutationCount: Int { refutations.count }

    public var snapshot: InitiatorSnapshot {
        let inFlight = pending.values.sorted { ($0.nextEvent, $0.cookie) < ($1.nextEvent, $1.cookie) }.map {
            InitiatorSnapshot.Pending(packet: $0.packet, cookie: $0.cookie, localRuleIndex: $0.rule.index,
                                      destination: $0.key.destination, destinationPort: $0.key.destinationPort,
                                      attempts: $0.sends, nextEvent: $0.nextEvent, joined: $0.joined)
        }
        let cached = cache.entries.map {
            InitiatorSnapshot.CacheEntry(peer: $0.discovery.peer, intersection: $0.discovery.intersection,
                                         localRuleIndex: $0.discovery.localRule.index, expires: $0.expires)
        }
        let failed = failureCache.entries.map {
            InitiatorSnapshot.FailureEntry(packet: $0.failure.packet, destination: $0.failure.destination,
                                           reason: $0.failure.reason, expires: $0.expires)
        }
        var snapshot = InitiatorSnapshot(pending: inFlight, cache: cached, failures: failed, counters: counters)
        snapshot.refuted = refutations.entries.map {
            InitiatorSnapshot.Refutation(peer: $0.key.peer, intersection: $0.key.intersection, expires: $0.value)
        }
        return snapshot
    }

    // MARK: - Steps

    /// The first rule for P when it is a permit, with its proxy in the initiator's view.
    private func localRule(for p: Packet) -> (PolicyRule, Proxy)? {
        guard let rule = policy.firstMatch(p, as: .initiator), rule.entry.action == .permit,
              let proxy = rule.entry.proxy(as: .initiator, family: p.family) else { return nil }
        return (rule, proxy)
    }

    private mutating func start(_ p: Packet, key: FlowKey, rule: PolicyRule, localProxy: Proxy,
                                consultFailures: Bool, now: NIODeadline,
                                rng: inout some RandomNumberGenerator) -> InitiatorAction {
        let service = ServiceKey(ruleIndex: rule.index, packet: p, destination: key.destination,
                                 destinationPort: key.destinationPort)
        if consultFailures, let entry = failureCache.lookup(service, now: now) {
            counters.negativeCacheHits += 1
            return .failedCached(packet: p, failure: entry.failure, until: entry.expires)
        }
        if var discovery = pending[key] {
            discovery.join()
            pending[key] = discovery
            counters.joins += 1
            return .joined(packet: p, cookie: discovery.cookie, discovering: discovery.packet)
        }
        guard pending.count < settings.effectiveMaxPending, let cookie = drawCookie(using: &rng) else {
            let failure = Failure(reason: .resourceLimit, packet: p, localRule: rule, destination: key.destination,
                                  peer: nil, entries: [], attempts: 0)
            counters.failures[.resourceLimit, default: 0] += 1
            return .failed(failure)
        }
        let proxyAddress = settings.sendProxyAddress
            ? ProxyAddress(pattern: localProxy.initiatorSide.pattern, proto: localProxy.proto) : nil
        let padding = settings.wantedEntries > 1
            ? TEDCodec.paddingForEntries(settings.wantedEntries, identity: identity.address.family,
                                         proxy: proxyAddress?.pattern.family, summary: p.family)
            : nil
        let message = Probe(initiatorCookie: cookie, capabilities: .ted, identity: identity,
                            proxyAddress: proxyAddress, summary: p, padding: padding,
                            cookie: learnedCookie(for: key.destination, now: now))
        let probe = OutgoingProbe(bytes: TEDCodec.encode(.probe(message)), cookie: cookie, source: p.source,
                                  sourcePort: p.proto.hasPorts ? (p.sourcePort ?? ISAKMP.port) : ISAKMP.port,
                                  destination: key.destination, destinationPort: key.destinationPort, attempt: 1)
        pending[key] = PendingDiscovery(key: key, cookie: cookie, packet: p, rule: rule, localProxy: localProxy,
                                        probe: probe, message: message, waits: settings.drawWaits(using: &rng), now: now)
        pendingByCookie[cookie] = key
        counters.probesSent += 1
        return .send(probe)
    }

    /// A challenge (exchange 242), taken only from the address probed or from a responder
    /// that may answer (`peers`): anyone else's is set aside.
    ///
    /// For a discovery in flight its cookie is kept, the newest winning, and echoed by every
    /// later send; the first challenge after each send also sends the probe again at once
    /// (`PendingDiscovery.take`). A challenge never shortens or ends a discovery: a forged
    /// one costs at most one extra send, and the responder treats a cookie it did not make
    /// as none. For no discovery in flight, its cookie (which names this gateway's identity,
    /// not a probe) is learned, and new probes and retransmissions echo it for
    /// `learnedLifetime`: a flood naming this gateway's identity teaches it the cookie that
    /// gets its own probes answered.
    private mutating func answer(_ challenge: Challenge, from source: IPAddress, now: NIODeadline) -> InitiatorAction {
        let discovery = pendingByCookie[challenge.initiatorCookie].flatMap { pending[$0] }
        guard source == discovery?.key.destination || settings.authorizations(of: source) != nil,
              settings.peerCheck.refusal(of: source) == nil else { return ignore(.challengeNotAllowed) }
        guard var discovery else { return learn(challenge.cookie, from: source, now: now) }
        guard let probe = discovery.take(challenge.cookie) else {
            pending[discovery.key] = discovery
            return ignore(.challengeKept)
        }
        pending[discovery.key] = discovery
        counters.challengesAnswered += 1
        return .send(probe)
    }

    /// Remembers a cookie for this gateway's identity. When `source` had none for a while,
    /// every discovery in flight without a challenge of its own sends once more at once
    /// echoing it (`PendingDiscovery.offer`): the genuine discovery that a flood naming this
    /// gateway left unanswered is answered one round trip after the flood's first challenge
    /// reaches it, not at its next retransmission. The scan of the discoveries happens at
    /// most once per `learnedRefresh` per source, whatever rate challenges come at; between
    /// scans the newest cookie is kept for the next probes.
    private mutating func learn(_ cookie: ReturnCookie, from source: IPAddress, now: NIODeadline) -> InitiatorAction {
        let lastOffer = learned.peek(source)?.offered
        let offers = lastOffer.map { now - $0 >= Self.learnedRefresh } ?? true
        _ = learned.insert(LearnedCookie(cookie: cookie, at: now, offered: offers ? now : lastOffer ?? now), for: source)
        guard offers else { return ignore(.unknownCookie) }
        var offered = false
        for key in pending.keys {
            offered = pending[key]?.offer(cookie, now: now) == true || offered
        }
        return ignore(offered ? .cookieLearned : .unknownCookie)
    }

    /// The learned cookie to echo towards `destination`: the one its own address gave, else
    /// the newest; none older than `learnedLifetime`.
    private func learnedCookie(for destination: IPAddress, now: NIODeadline) -> ReturnCookie? {
        if let own = learned.peek(destination), now - own.at < Self.learnedLifetime { return own.cookie }
        return learned.firstNewest { _, value in now - value.at < Self.learnedLifetime }?.value.cookie
    }

    /// A fresh non-zero cookie that no live or recently ended discovery uses.
    private func drawCookie(using rng: inout some RandomNumberGenerator) -> Cookie? {
        for _ in 0..<8 {
            let cookie: Cookie = rng.next()
            if cookie != 0, pendingByCookie[cookie] == nil, finished.peek(cookie) == nil { return cookie }
        }
        return nil
    }

    /// Takes the first entry whose intersection with the local proxy holds P (blocks 216-218).
    private mutating func evaluate(_ response: Response, for discovery: PendingDiscovery, source: IPAddress,
                                   sourcePort: UInt16, now: NIODeadline) -> InitiatorAction {
        var anyIntersection = false
        for (index, entry) in response.entries.enumerated() {
            guard let intersection = entry.intersection(discovery.localProxy) else { continue }
            anyIntersection = true
            guard intersection.contains(discovery.packet) else { continue }
            let found = Discovery(peer: response.identity, entries: response.entries, chosenEntry: index,
                                  intersection: intersection, packet: discovery.packet, localRule: discovery.rule,
                                  rtt: now - discovery.firstSent, attempts: discovery.sends,
                                  responseSource: source, responseSourcePort: sourcePort)
            counters.discoveries += 1
            failureCache.remove(ServiceKey(ruleIndex: discovery.rule.index, packet: discovery.packet,
                                           destination: discovery.key.destination,
                                           destinationPort: discovery.key.destinationPort))
            if settings.effectiveCacheTTL > .zero,
               cache.insert(found, expires: now + settings.effectiveCacheTTL) {
                counters.evictions += 1
            }
            return .discovered(found)
        }
        return fail(anyIntersection ? .packetOutside : .emptyIntersection, discovery,
                    peer: response.identity, entries: response.entries, now: now)
    }

    private mutating func fail(_ reason: Failure.Reason, _ discovery: PendingDiscovery, peer: Identity?,
                               entries: [Proxy], now: NIODeadline) -> InitiatorAction {
        let failure = Failure(reason: reason, packet: discovery.packet, localRule: discovery.rule,
                              destination: discovery.key.destination, peer: peer, entries: entries,
                              attempts: discovery.sends)
        counters.failures[reason, default: 0] += 1
        let service = ServiceKey(ruleIndex: discovery.rule.index, packet: discovery.packet,
                                 destination: discovery.key.destination, destinationPort: discovery.key.destinationPort)
        if settings.effectiveNegativeTTL > .zero,
           failureCache.insert(failure, key: service, expires: now + settings.effectiveNegativeTTL) {
            counters.evictions += 1
        }
        return .failed(failure)
    }

    /// Removes a discovery from the pending tables and remembers its cookie.
    private mutating func end(_ discovery: PendingDiscovery) {
        pending[discovery.key] = nil
        pendingByCookie[discovery.cookie] = nil
        finished.insert(true, for: discovery.cookie)
    }

    private mutating func reject(_ reason: RejectReason) -> InitiatorAction {
        counters.rejects[reason, default: 0] += 1
        return .rejected(reason)
    }

    private mutating func ignore(_ reason: IgnoreReason) -> InitiatorAction {
        counters.responsesIgnored[reason, default: 0] += 1
        return .ignored(reason)
    }
}

/// A cookie for this gateway's identity, when it came, and when that responder's cookies
/// were last offered to the discoveries in flight.
struct LearnedCookie: Sendable {
    var cookie: ReturnCookie
    var at: NIODeadline
    var offered: NIODeadline
}

extension Response {
    /// The response with its identity unmapped (an IPv4-mapped IPv6 address as IPv4).
    var unmapped: Response {
        guard identity.address.unmappedV4 != identity.address else { return self }
        return Response(initiatorCookie: initiatorCookie, responderCookie: responderCookie, capabilities: capabilities,
                        identity: identity.unmapped, entries: entries)
    }
}

extension Identity {
    /// The identity with an IPv4-mapped IPv6 address as IPv4: every table and check sees one form.
    var unmapped: Identity { Identity(address: address.unmappedV4, port: port) }
}
