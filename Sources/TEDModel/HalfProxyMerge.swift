/// TED v1/v2 as described in the patent's BACKGROUND, kept as a yardstick for v3.
///
/// The initiator sends its half proxy W (its own side, no protocol or ports); the
/// responder answers with its own protected half Y; the initiator proposes the
/// merged proxies (W, Y) with any protocol and any ports. IKE then succeeds only if
/// that proposal lies inside both gateways' policies and P lies inside it, which is
/// why v2 works only where "the initiator could specify the source IP address, and
/// the responder could specify the destination IP address".
public enum HalfProxyMerge {
    /// Why a v2 merge did not yield a usable tunnel.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case differentIPVersions
        case exceedsInitiatorPolicy
        case exceedsResponderPolicy
        case packetOutside

        public var description: String {
            switch self {
            case .differentIPVersions: "the half proxies are of different IP versions"
            case .exceedsInitiatorPolicy: "the merged proxies exceed the initiator's policy"
            case .exceedsResponderPolicy: "the merged proxies exceed the responder's policy"
            case .packetOutside: "packet P lies outside the merged proxies"
            }
        }
    }

    /// The v2 proposal for an initiator proxy and a responder proxy (both in the initiator's view).
    public static func proposal(initiator: Proxy, responder: Proxy) -> Proxy? {
        Proxy(proto: .any,
              initiatorSide: HalfProxy(pattern: initiator.initiatorSide.pattern),
              responderSide: HalfProxy(pattern: responder.responderSide.pattern))
    }

    /// The merged proxies when both gateways would accept them for P, else why not.
    public static func merge(initiator: Proxy, responder: Proxy, packet: Packet) -> Result<Proxy, Failure> {
        guard let merged = proposal(initiator: initiator, responder: responder) else {
            return .failure(.differentIPVersions)
        }
        if !merged.isSubset(of: initiator) { return .failure(.exceedsInitiatorPolicy) }
        if !merged.isSubset(of: responder) { return .failure(.exceedsResponderPolicy) }
        if !merged.contains(packet) { return .failure(.packetOutside) }
        return .success(merged)
    }
}
