import Logging
import TEDConfig

/// Puts a daemon together from its configuration: discovery, plus the data plane and
/// the IKE hand-off when their sections ask for them.
public enum DaemonAssembly {
    public static func service(configuration: Configuration, logger: Logger) async throws -> DaemonService {
        DaemonService(configuration: configuration, logger: logger)
    }
}
