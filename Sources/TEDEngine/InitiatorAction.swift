import NIOCore
import TEDModel
import TEDWire

/// What the daemon driver must do after feeding the initiator an input.
public enum InitiatorAction: Hashable, Sendable {
    /// No permit rule covers the packet (no match, or a deny): TED has nothing to do.
    case notProtected(Packet)
    /// A cached discovery's intersection contains the packet: use its peer, no probe.
    case cached(Discovery)
    /// A recent failure for the same service suppresses a new probe until `until`.
    case failedCached(packet: Packet, failure: Failure, until: NIODeadline)
    /// A discovery for the same rule and destination is in flight; the packet waits on it.
    /// `discovering` is the packet that discovery started for: its outcome names it.
    case joined(packet: Packet, cookie: Cookie, discovering: Packet)
    /// Send these bytes (first transmission or a byte-identical retransmission).
    case send(OutgoingProbe)
    /// A response was accepted and the packet lies in the intersection (patent block 218).
    case discovered(Discovery)
    /// A discovery ended without a usable intersection, or could not start.
    case failed(Failure)
    /// A datagram that is not a response, or not a valid message; counted, no answer.
    case rejected(RejectReason)
    /// A well-formed response that changes nothing; counted.
    case ignored(IgnoreReason)
}

/// A probe to put on the wire, with the addresses it must carry (spec section 1).
public struct OutgoingProbe: Hashable, Sendable {
    public let bytes: ByteBuffer
    public let cookie: Cookie
    /// IP source: P's source end host.
    public let source: IPAddress
    /// P's source port when P is TCP, UDP, UDP-Lite or SCTP, else 500.
    public let sourcePort: UInt16
    /// P's destination end host, or the `ted probe --to` target.
    public let destination: IPAddress
    public let destinationPort: UInt16
    /// 1 for the first transmission, then 2, 3, ...
    public let attempt: Int
    /// This send answers a challenge (the probe again, echoing its cookie): neither a first
    /// transmission nor a retransmission.
    public internal(set) var answersChallenge = false
}

/// A successful discovery: whom to negotiate with and what to propose.
public struct Discovery: Hashable, Sendable {
    /// The responder's identity: its IKE peer address.
    public let peer: Identity
    /// The response's entries, in order (entry 1 matched the summary).
    public let entries: [Proxy]
    /// 0-based index into `entries` of the first entry whose intersection holds the packet.
    public let chosenEntry: Int
    /// The chosen entry intersected with the local rule's proxy (patent block 216).
    public let intersection: Proxy
    /// The packet the probe summarised.
    public let packet: Packet
    /// The local rule whose proxy was intersected.
    public let localRule: PolicyRule
    /// Time from the first transmission to the accepted response; with `attempts > 1`
    /// it includes retransmission waits (a response cannot tell which send it answers).
    public let rtt: TimeAmount
    /// Probes sent before the response arrived.
    public let attempts: Int
    /// IP source of the response datagram (normally the peer's address).
    public let responseSource: IPAddress
    /// UDP source port of the response datagram.
    public let responseSourcePort: UInt16
}

extension Discovery {
    /// The same discovery answering another packet of its intersection (a cache hit): the
    /// hand-off proposes the child that holds this packet.
    func answering(_ other: Packet) -> Discovery {
        Discovery(peer: peer, entries: entries, chosenEntry: chosenEntry, intersection: intersection, packet: other,
                  localRule: localRule, rtt: rtt, attempts: attempts, responseSource: responseSource,
                  responseSourcePort: responseSourcePort)
    }
}

/// A failed discovery.
public struct Failure: Hashable, Sendable {
    public enum Reason: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// No acceptable response after every retransmission.
        case timeout
        /// No response entry intersects the local rule's proxy.
        case emptyIntersection
        /// Some entry intersects, but no intersection holds the packet.
        case packetOutside
        /// The pending table is full or no unused cookie could be drawn: nothing sent.
        case resourceLimit

        public var description: String { rawValue }
    }

    public let reason: Reason
    public let packet: Packet
    public let localRule: PolicyRule
    /// Where the probes went.
    public let destination: IPAddress
    /// The responder, when one answered.
    public let peer: Identity?
    /// The responder's entries, when one answered.
    public let entries: [Proxy]
    /// Probes sent.
    public let attempts: Int
}

/// Why the initiator refused a datagram.
public enum RejectReason: Hashable, Sendable, CustomStringConvertible {
    /// It did not decode (spec section 3).
    case undecodable(DecodeError.Reason)
    /// It is a probe; the initiator side only takes responses.
    case unexpectedProbe

    public var description: String {
        switch self {
        case .undecodable(let reason): "undecodable: \(reason.rawValue)"
        case .unexpectedProbe: "unexpected probe"
        }
    }
}

/// Why the initiator set a well-formed response aside.
public enum IgnoreReason: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Its cookie belongs to a discovery that already ended: a duplicate or a late answer.
    case duplicate
    /// Its cookie matches nothing sent recently.
    case unknownCookie
    /// Its identity is outside the allowed peer prefixes; the discovery keeps waiting.
    case peerNotAllowed
    /// An entry claims a responder side outside what that peer `protects`: never taken,
    /// never cached, and the discovery keeps waiting for a genuine answer.
    case claimNotAllowed
    /// Its identity can never be a peer (a special range or this gateway's own address);
    /// the discovery keeps waiting.
    case refusedIdentity
    /// IKE did not prove this peer's claim for the packet recently (`Initiator.refute`):
    /// never taken again before `negativeTTL` passes; the discovery keeps waiting.
    case refutedClaim
    /// A challenge for a discovery that already sent an extra probe since its last
    /// scheduled one: its cookie is kept for the next send.
    case challengeKept
    /// A challenge for no discovery in flight: its cookie, which names this gateway's
    /// identity, is echoed by new probes for a while (a flood naming this gateway), and the
    /// discoveries in flight without a challenge of their own send once more with it at
    /// once (at their next `tick`). A challenge for no discovery that offers nothing new is
    /// `.unknownCookie` (its cookie is still kept).
    case cookieLearned
    /// A challenge from an address that is neither the one probed nor a peer that may
    /// answer: set aside.
    case challengeNotAllowed

    public var description: String { rawValue }
}

extension Discovery: CustomStringConvertible {
    /// `peer 198.51.100.2:500 entry 1: tcp 198.18.0.0/16 <-> 198.18.2.0/24 port 443`.
    public var description: String { "peer \(peer) entry \(chosenEntry + 1): \(intersection)" }
}

extension Failure: CustomStringConvertible {
    /// `timeout for tcp 198.18.1.10:40000 198.18.2.20:443 after 4 probes to 198.18.2.20`.
    public var description: String {
        "\(reason) for \(packet) after \(attempts) probe\(attempts == 1 ? "" : "s") to \(destination)"
            + (peer.map { " (answered by \($0))" } ?? "")
    }
}
