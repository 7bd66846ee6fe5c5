import Logging
import TEDConfig
import TEDLinux
import TEDVici

/// Puts a daemon together from its configuration: discovery, plus the data plane and
/// the IKE hand-off when their sections ask for them.
public enum DaemonAssembly {
    public static func service(configuration: Configuration, logger: Logger) throws -> DaemonService {
        var plugins: [any DaemonPlugin] = []
        var events = DiscoveryEvents()
        var probeSender: ProbeSender?
        if configuration.dataplane.traps || configuration.dataplane.intercept {
            let dataplane = try DataplanePlugin(configuration: configuration, logger: logger)
            plugins.append(dataplane)
            if configuration.dataplane.traps { probeSender = dataplane.probeSender }
        }
        if let ike = configuration.ike {
            let handoff = IKEHandoff(controller: ViciController(socketPath: ike.vici, logger: logger),
                                     configuration: configuration, options: ike, logger: logger)
            plugins.append(handoff)
            events.discovered = { handoff.discovered($0) }
        }
        return DaemonService(configuration: configuration, logger: logger, events: events,
                             probeSender: probeSender, plugins: plugins)
    }
}
