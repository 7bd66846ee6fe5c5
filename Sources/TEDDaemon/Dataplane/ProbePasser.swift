import Logging
import TEDLinux

/// Sends an intercepted probe that this gateway does not answer on towards the host it
/// was addressed to, as a router would have: same bytes, same source address and port,
/// TTL (hop limit) one less, marked `NFTInterception.passedMark`. It leaves this host as a
/// locally generated packet, so this gateway's interception (prerouting) never sees it
/// again; the next TED gateway on the path may intercept and answer it.
struct ProbePasser: Sendable {
    let enabled: Bool
    let metrics: PassMetrics
    let logger: Logger
    private let errorLog = LogLimiter()

    init(enabled: Bool, metrics: MetricsRegistry, logger: Logger) {
        self.enabled = enabled
        self.metrics = PassMetrics(registry: metrics)
        self.logger = logger
    }

    func passOn(_ datagram: InterceptListener.Datagram) {
        guard enabled, let destination = datagram.originalDestination else { return }
        // A router does not forward a packet whose TTL runs out here; neither does ted.
        guard datagram.ttl > 1 else {
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
