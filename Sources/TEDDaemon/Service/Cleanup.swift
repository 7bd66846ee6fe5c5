import Logging
import TEDConfig
import TEDLinux
import TEDModel
import TEDVici

/// `ted cleanup`: removes everything ted ever installs, for an operator who uninstalls it.
/// While ted is merely stopped its traps and inbound guard stay on purpose (fail closed);
/// after this, protected traffic without an SA follows the routing table again.
public enum Cleanup {
    /// Removes ted's XFRM policies, nftables tables, ip rules and (with a configuration
    /// that names charon's VICI socket) its charon connections and key; one line per step.
    public static func run(configuration: Configuration?, logger: Logger) async -> [String] {
        var lines: [String] = []
        do {
            let removed = try XFRMPolicyTable().removeStale()
            lines.append("XFRM: removed \(removed) policies in ted's priority band")
        } catch {
            lines.append("XFRM: \(error)")
        }
        InboundGuard.remove()
        NFTInterception.removeAll()
        HoldTable.remove()
        lines.append("nftables: removed tables inet \(InboundGuard.tableName), inet \(NFTInterception.tableName) and inet \(HoldTable.tableName), and the hold queue rules")
        ProbeRoutingException(probePort: configuration?.probePort ?? ISAKMP.port).remove()
        lines.append("routing: removed ted's ip rules")
        guard let ike = configuration?.ike else { return lines }
        let controller = ViciController(socketPath: ike.vici, logger: logger)
        do {
            let names = try await controller.connectionNames().filter { $0.hasPrefix("ted-") }
            for name in names {
                try? await controller.terminate(ike: name)
                try? await controller.unloadConnection(name)
            }
            let keys = ((try? await controller.sharedKeyIDs()) ?? []).filter { $0.hasPrefix(SharedKey.idPrefix) }
            for id in keys { try? await controller.unloadSharedKey(id: id) }
            lines.append("charon: terminated and unloaded \(names.count) ted-* connections and \(keys.count) of ted's keys")
        } catch {
            lines.append("charon: \(error)")
        }
        await controller.close()
        return lines
    }
}
