import TEDEngine
import TEDModel

/// How one request for a discovery ended, as `ted probe` and the control socket report it.
public enum DiscoveryOutcome: Hashable, Sendable {
    /// A responder answered and P lies in the intersection (from the cache when `cached`).
    case discovered(Discovery, cached: Bool)
    /// No usable answer (timeout, empty intersection, P outside, resource limit);
    /// `cached` when a recent identical failure suppressed a new probe.
    case failed(Failure, cached: Bool)
    /// No permit entry covers P: TED has nothing to do.
    case notProtected(Packet)
    /// The service stopped before the discovery ended.
    case cancelled
}
