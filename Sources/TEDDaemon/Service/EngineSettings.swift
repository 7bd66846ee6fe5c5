import NIOCore
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel
import TEDWire

/// The configuration mapped onto the engine's settings. The configuration's defaults and
/// valid ranges are the engine's own, except where the daemon deliberately differs (here,
/// and only here):
/// - probes carry the proxy address (`discovery.send-proxy-address`, engine: off): a
///   responder can then check the initiator's side as well as the summary;
/// - the responder challenges what its rate limits refuse (engine: off), issue 21.
extension Configuration {
    /// The identity put in probes and responses: this gateway's address and advertised port.
    public var tedIdentity: Identity { Identity(address: identity, port: advertisePort) }

    /// The initiator's settings: the first wait is `timeout`, each retry doubles it.
    public var discoverySettings: DiscoverySettings {
        DiscoverySettings(
            retries: discovery.retries,
            retransmitSchedule: DiscoverySettings.doubling(from: .nanoseconds(Int64(discovery.timeout * 1e9)), retries: discovery.retries),
            cacheTTL: .nanoseconds(Int64(discovery.cacheTTL * 1e9)),
            negativeTTL: .nanoseconds(Int64(discovery.negativeTTL * 1e9)),
            maxPending: discovery.maxPending, maxCache: discovery.maxCache, probePort: probePort,
            peers: peers, sendProxyAddress: discovery.sendProxyAddress,
            wantedEntries: discovery.entries, peerCheck: peerCheck)
    }

    /// How long a first packet may be held: `hold.time`, else the longest its discovery
    /// can take (jitter included).
    public var holdTime: TimeAmount {
        hold.time.map { .nanoseconds(Int64($0 * 1e9)) } ?? discoverySettings.longestDiscovery
    }

    /// Identities never taken as peers: special ranges, and this host's own and broadcast
    /// addresses (read from its interfaces now; only the special ranges when they cannot be
    /// listed). Loopback is allowed when ted listens there.
    public var peerCheck: PeerAddressCheck { peerCheck(LocalInterfaces.current() ?? LocalInterfaces()) }

    /// The same from interfaces read now; nil when they cannot be listed, so that a watch
    /// keeps the last set it read rather than forgetting this gateway's addresses.
    var currentPeerCheck: PeerAddressCheck? { LocalInterfaces.current().map(peerCheck) }

    private func peerCheck(_ local: LocalInterfaces) -> PeerAddressCheck {
        let loopback = [listen.address, identity].contains { $0.isLoopback }
        return PeerAddressCheck(own: local.addresses, broadcasts: local.broadcasts, allowLoopback: loopback)
    }

    /// The responder's settings with fresh random cookie secrets, challenging what the rate
    /// limits refuse (issue 21: forged floods must not starve genuine initiators).
    public func responderSettings(using rng: inout some RandomNumberGenerator) -> ResponderSettings {
        ResponderSettings(
            enabled: responder.enabled, secret: .random(using: &rng),
            perSourceRate: RateLimit(perSecond: responder.rate, burst: responder.burst),
            perTargetRate: RateLimit(perSecond: responder.targetRate, burst: responder.targetBurst),
            globalRate: RateLimit(perSecond: responder.globalRate, burst: responder.globalBurst),
            maxTrackedSources: responder.maxSources, peerCheck: peerCheck,
            offerAdditionalEntries: responder.offerAll, challenges: true, challengeSecret: .random(using: &rng))
    }
}
