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
        var dataplane: DataplanePlugin?
        if configuration.dataplane.traps || configuration.dataplane.intercept {
            let plugin = try DataplanePlugin(configuration: configuration, logger: logger)
            plugins.append(plugin)
            dataplane = plugin
            if configuration.dataplane.traps { probeSender = plugin.probeSender }
        }
        if let ike = configuration.ike {
            let handoff = IKEHandoff(controller: ViciController(socketPath: ike.vici, logger: logger),
                                     configuration: configuration, options: ike, logger: logger,
                                     childHooks: dataplane.map { plugin in
                                         IKEHandoff.ChildHooks(up: { plugin.childUp($0, selectors: $1) },
                                                               down: { plugin.childDown($0) },
                                                               rekeyed: { plugin.childRekeyed($0, to: $1) },
                                                               reconciled: { plugin.reconciled() })
                                     })
            plugins.append(handoff)
            events.discovered = { handoff.discovered($0) }
            dataplane?.onPoliciesLost { handoff.policiesLost() }
        }
        plugins.append(FreedHeapRelease())
        return DaemonService(configuration: configuration, logger: logger, events: events,
                             probeSender: probeSender, plugins: plugins)
    }
}
