import Logging
import TEDLinux
import TEDModel

/// Sends an intercepted probe that this gateway does not answer on towards the host it
/// was addressed to, as a router would have: same bytes, same source address and port,
/// TTL (hop limit) one less, marked `NFTInterception.passedMark`. It leaves this host as a
/// locally generated packet, so this gateway's interception (prerouting) never sees it
/// again; the next TED gateway on the path may intercept and answer it.
///
/// It leaves past ted's XFRM traps (a per-socket bypass, as every probe ted sends), so a
/// probe that is itself traffic this gateway's policy protects (a datagram to UDP/500
/// from a host behind this gateway, towards a site it protects) is not passed on: the
/// trap would have caught it had ted not intercepted it, and it must not leave in clear.
/// Everything else leaves as it arrived (the same bytes, no padding added), which is what
/// the inbound guard lets through towards a protected host anyway (TED messages pass it).
struct ProbePasser: Sendable {
    let enabled: Bool
    let metrics: PassMetrics
    let logger: Logger
    /// The policy this gateway initiates for, which its traps enforce.
    let policy: any PolicyLookup
    private let errorLog = LogLimiter()

    init(enabled: Bool, policy: any PolicyLookup, metrics: MetricsRegistry, logger: Logger) {
        self.enabled = enabled
        self.policy = policy
        self.metrics = PassMetrics(registry: metrics)
        self.logger = logger
    }

    /// Whether the datagram itself, as a packet, is what a permit of this gateway protects.
    func isProtected(_ datagram: InterceptListener.Datagram, to destination: IPAddress) -> Bool {
        guard let packet = Packet(proto: .udp, source: datagram.source, destination: destination,
                                  sourcePort: datagram.sourcePort, destinationPort: datagram.originalPort) else { return true }
        return policy.firstMatch(packet, as: .initiator)?.entry.action == .permit
    }

    func passOn(_ datagram: InterceptListener.Datagram) {
        guard enabled, let destination = datagram.originalDestination else { return }
        // A router does not forward a packet whose TTL runs out here; neither does ted.
        guard datagram.ttl > 1, !isProtected(datagram, to: destination) else {
            metrics.notPassed.increment()
            return
        }
        do {
            try TransparentProbe.send(datagram.bytes, from: datagram.source, port: datagram.sourcePort,
                                      to: destination, port: datagram.originalPort, ttl: datagram.ttl - 1,
                                      mark: NFTInterception.passedMark, exactPort: true)
            metrics.passed.increment()
        } catch {
            metrics.notPassed.increment()
            if errorLog.allow("\(error.code)") {
                logger.warning("cannot pass an intercepted probe on", metadata: ["ted.error": "\(error)",
                                                                                 "ted.destination": "\(destination)"])
            }
        }
    }
}
