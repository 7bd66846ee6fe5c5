import NIOCore
import TEDEngine
import TEDModel
import TEDWire

/// An address and UDP or TCP port, written `198.51.100.1:500` or `[2001:db8::1]:500`.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `A:port`, `[A6]:port`, or a bare address with `defaultPort`.
    public init?(_ text: String, defaultPort: UInt16? = nil) {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let address = IPAddress(host) else { return nil }
        if let portText {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portText) else { return nil }
            self.init(address: address, port: port)
        } else {
            guard let defaultPort else { return nil }
            self.init(address: address, port: defaultPort)
        }
    }

    public var description: String {
        address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

/// Discovery timing and table sizes (the `discovery` section). Defaults and valid ranges
/// are the engine's (`DiscoverySettings`); where the daemon differs, `EngineSettings.swift` says why.
public struct DiscoveryOptions: Hashable, Sendable {
    public var retries = DiscoverySettings.defaultRetries
    /// First retransmission timeout in seconds; each retry doubles it.
    public var timeout = DiscoverySettings.defaultFirstWait.seconds
    public var cacheTTL = DiscoverySettings.defaultCacheTTL.seconds
    public var negativeTTL = DiscoverySettings.defaultNegativeTTL.seconds
    public var maxPending = DiscoverySettings.defaultMaxPending
    public var maxCache = DiscoverySettings.defaultMaxCache
    /// Whether probes carry the initiator's proxy address (spec 4.2); the daemon's
    /// default differs from the engine's (`EngineSettings.swift`).
    public var sendProxyAddress = true
    /// Response entries wanted; above 1 the probe is padded so a responder may send them.
    public var entries = DiscoverySettings.defaultWantedEntries

    public init() {}
}

/// The responder's switches and rate limits (the `responder` section). Defaults and valid
/// ranges are the engine's (`ResponderSettings`, `RateLimit`).
public struct ResponderOptions: Hashable, Sendable {
    public var enabled = true
    /// Probes per second accepted from one source /24 (IPv4) or /64 (IPv6).
    public var rate = ResponderSettings.defaultPerSourceRate.perSecond
    public var burst = ResponderSettings.defaultPerSourceRate.burst
    /// Responses per second sent towards one identity /24 (IPv4) or /64 (IPv6), whoever
    /// asked: bounds reflection towards a victim named by forged probes.
    public var targetRate = ResponderSettings.defaultPerTargetRate.perSecond
    public var targetBurst = ResponderSettings.defaultPerTargetRate.burst
    /// Probes per second accepted in all.
    public var globalRate = ResponderSettings.defaultGlobalRate.perSecond
    public var globalBurst = ResponderSettings.defaultGlobalRate.burst
    public var maxSources = ResponderSettings.defaultMaxTrackedSources
    /// Whether responses offer further permit entries after the matched one.
    public var offerAll = false
    /// Whether an intercepted probe this gateway does not answer goes on to its destination.
    public var passThrough = true

    public init() {}
}

/// Linux data plane integration (the `dataplane` section).
public struct DataplaneOptions: Hashable, Sendable {
    /// Install XFRM trap and bypass policies and act on ACQUIREs.
    public var traps = false
    /// Intercept probes addressed to protected hosts with nftables TPROXY.
    public var intercept = false
    /// Local port the intercepting transparent socket listens on.
    public var interceptPort: UInt16 = 1500
    /// Value for net.core.xfrm_acq_expires (seconds), when set.
    public var acquireExpires: Int?
    public static let validAcquireExpires = 1...3_600
    /// What ted sets `xfrm_acq_expires` to with traps on: the kernel's default (30 s) lets
    /// one flow to a destination that never answers keep the larval state and starve every
    /// other flow of its entry, so ted defaults to a few seconds.
    public var effectiveAcquireExpires: Int? { traps ? (acquireExpires ?? Self.defaultAcquireExpires) : acquireExpires }
    public static let defaultAcquireExpires = 3
    /// Largest number of XFRM selectors one policy entry may expand into.
    public var maxSelectorsPerEntry = 256
    public static let validMaxSelectorsPerEntry = 1...65_536
    /// Limit trap policies to packets leaving through this interface (the outside one),
    /// so traffic already routed into a tunnel device (kernel-libipsec) is not trapped again.
    public var trapInterface: String?

    public init() {}
}

/// First packets held while their tunnel is found and built (the `hold` section).
/// Defaults and valid ranges are the engine's (`HeldPackets.Limits`).
public struct HoldOptions: Hashable, Sendable {
    /// Hold (with traps on); false keeps the patent's drop (block 208).
    public var enabled = true
    public var perFlow = HeldPackets.Limits().perFlow
    /// Packets held in all for the sources of one /24 (IPv4) or /64 (IPv6): one host
    /// cannot take the room the others' first packets need.
    public var perSource = HeldPackets.Limits().perSource
    public var packets = HeldPackets.Limits().packets
    public var bytes = HeldPackets.Limits().bytes
    /// Seconds a packet may wait; nil: the longest its discovery can take.
    public var time: Double?
    /// The netfilter queue number ted reads held packets from.
    public var queue: UInt16 = 2029

    public init() {}
}

/// How ted hands discoveries to strongSwan (the `ike` section).
public struct IKEOptions: Hashable, Sendable {
    public enum Authentication: Hashable, Sendable {
        /// A group key: owned by the peers without a key of their own (`Configuration.peerKeys`),
        /// or by anyone when no peers are listed.
        case psk(String)
        /// Only the peers' own keys (`peers[].psk`).
        case peerKeys
        case pubkey(certificate: String, privateKey: String, caCertificate: String)
    }

    /// Path of charon's VICI socket.
    public var vici = "/var/run/charon.vici"
    public var proposals = ["aes256gcm16-prfsha256-x25519", "aes256-sha256-modp2048"]
    public var espProposals = ["aes256gcm16", "aes256-sha256"]
    public var authentication = Authentication.psk("")
    /// Load one `%any` connection per permit entry so peers can start IKE to us.
    public var respond = true
    /// Seconds to wait for `initiate` to finish.
    public var initiateTimeout = 10.0
    public static let validInitiateTimeout = 0.1...300.0
    /// ted's connections in charon at most, in all and towards one peer: a flood of
    /// discoveries (or of peers) cannot make ted load connections without bound.
    public var maxConnections = 256
    public var maxConnectionsPerPeer = 16
    public static let validMaxConnections = 1...100_000
    public static let validMaxConnectionsPerPeer = 1...10_000

    public init() {}
}

/// A peer prefix's own IKE pre-shared key (`peers[].psk`): only identities inside
/// `identity` may authenticate with it.
public struct PeerKey: Hashable, Sendable {
    public var identity: AddressPattern
    public var secret: String

    public init(identity: AddressPattern, secret: String) {
        self.identity = identity
        self.secret = secret
    }
}

/// How much the daemon logs (`log-level`): swift-log's levels, by name, least severe first.
public enum LogLevel: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case trace, debug, info, notice, warning, error, critical

    public var description: String { rawValue }
}

/// A whole ted configuration file.
public struct Configuration: Hashable, Sendable {
    /// This gateway's address: put in identity payloads and used as the IKE address.
    public var identity: IPAddress
    public var listen: Endpoint
    /// Port put in the identity ID payload (default: the listen port).
    public var advertisePort: UInt16
    /// Destination port of probes.
    public var probePort = ISAKMP.port
    public var policy: Policy
    /// Responder identities accepted as peers and what each may protect (empty: anyone,
    /// anything).
    public var peers: [PeerAuthorization] = []
    /// The peers' own pre-shared keys, in `peers` order.
    public var peerKeys: [PeerKey] = []
    public var discovery = DiscoveryOptions()
    public var responder = ResponderOptions()
    public var dataplane = DataplaneOptions()
    public var hold = HoldOptions()
    public var ike: IKEOptions?
    public var controlSocket = Configuration.defaultControlSocket
    public static let defaultControlSocket = "/run/ted/ted.sock"
    /// A group whose members may use the control socket (mode 0660); nil: 0600, root and
    /// ted's own user only.
    public var controlGroup: String?
    /// Where Prometheus text is served over HTTP, when set.
    public var metrics: Endpoint?
    /// A classic pcap file to which every TED datagram sent or received is appended.
    public var capture: String?
    /// Size at which the capture file is renamed `<file>.1` and a new one started.
    public var captureMaxBytes = 64 << 20
    /// The least severe level the daemon logs (`--log-level` overrides it).
    public var logLevel = LogLevel.info
    public static let validCaptureMaxBytes = 4_096...(1 << 40)
    /// What the loader found worth fixing in a valid file (a key others can read).
    public var warnings: [ConfigWarning] = []

    public init(identity: IPAddress, listen: Endpoint, policy: Policy) {
        self.identity = identity
        self.listen = listen
        self.advertisePort = listen.port
        self.policy = policy
    }
}

extension TimeAmount {
    /// In seconds, as the configuration writes durations.
    var seconds: Double { Double(nanoseconds) / 1e9 }
}
