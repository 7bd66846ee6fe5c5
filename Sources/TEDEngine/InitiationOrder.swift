import NIOCore
import TEDModel

/// Who starts IKE when two gateways discover each other at once.
///
/// Gateway A answers B's probe while B answers A's: each then holds a discovery of the
/// other and, left alone, each starts its own IKE SA, so the pair ends with two IKE SAs and
/// two children for one intersection (issue 24 measured 1.6 per pair in a 20-site mesh).
/// The rule here makes one of them wait. A gateway that answered the peer's probe within
/// `answerWindow` knows the peer is starting IKE towards it now, unless the peer is
/// waiting too. Two cases:
/// - it answered the peer's probe before it sent its own: its own probe then reached the
///   peer after the peer's discovery had ended, so the peer is not waiting (it had answered
///   nothing yet when it decided): this gateway waits, whatever the addresses;
/// - the probes crossed (each sent before answering the other's): both may be about to
///   start, and the higher address waits.
/// A waiting gateway waits up to `wait` for a child SA of the peer's to cover what it
/// would propose, and starts its own only if none came: a peer whose IKE fails costs at
/// most `wait`.
///
/// Anyone can send a probe naming a peer, so an answer proves nothing about the peer
/// unless its probe echoed a good cookie (`proven`). A spoofer who keeps the record of an
/// unproven answer fresh would make this gateway wait for a child that never comes; so an
/// unproven answer makes it wait at most once per peer in `unprovenWaitInterval`. The
/// crossing it exists for happens once per pair, when the pair first talks.
///
/// Pure: the driver records every response it sends (`answered`) and asks `shouldWait`
/// when a discovery is handed to IKE.
public struct InitiationOrder: Sendable {
    /// How recent an answer to the peer must be for the peer to be starting IKE now.
    public static let answerWindow = TimeAmount.seconds(2)
    /// The longest a gateway waits for the peer's child before starting its own.
    public static let wait = TimeAmount.seconds(1)
    /// How long after waiting for a peer on an unproven answer the next unproven answer
    /// is not waited on.
    public static let unprovenWaitInterval = TimeAmount.seconds(60)

    private struct Answer: Sendable {
        var at: NIODeadline
        var proven: Bool
    }

    private var answers: BoundedLRU<IPAddress, Answer>
    /// When this gateway last waited for a peer on an unproven answer.
    private var unprovenWaits: BoundedLRU<IPAddress, NIODeadline>

    /// Remembers the latest answer to at most `capacity` identities (the oldest go first).
    public init(capacity: Int = 4096) {
        answers = BoundedLRU(capacity: capacity)
        unprovenWaits = BoundedLRU(capacity: capacity)
    }

    /// This gateway sent a response to the identity `peer` at `now`; `proven` when the
    /// probe echoed a good cookie.
    public mutating func answered(_ peer: IPAddress, proven: Bool, now: NIODeadline) {
        _ = answers.insert(Answer(at: now, proven: proven), for: peer)
    }

    /// Whether this gateway (`own`), whose discovery of `peer` sent its first probe at
    /// `probed`, should leave the IKE SA with `peer` to the peer for now.
    public mutating func shouldWait(for peer: IPAddress, own: IPAddress, probed: NIODeadline, now: NIODeadline) -> Bool {
        guard let answer = answers.peek(peer), now - answer.at <= Self.answerWindow,
              answer.at < probed || own > peer else { return false }
        if answer.proven { return true }
        if let waited = unprovenWaits.peek(peer), now - waited < Self.unprovenWaitInterval { return false }
        _ = unprovenWaits.insert(now, for: peer)
        return true
    }
}
