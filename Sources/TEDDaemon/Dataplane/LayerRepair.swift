import Logging
import TEDLinux

/// What ted keeps in the kernel and another program can remove, put back within
/// `repairInterval`: the XFRM traps and the live tunnels' bypasses (`ip xfrm policy flush`), the
/// guard, hold and interception tables (`nft flush ruleset`, `systemctl restart
/// nftables`). Each repair is one warning line and `ted_repairs_total{layer}`.
///
/// Meanwhile nothing protected leaves in clear: a flush of XFRM leaves the guard, which
/// drops what the traps would have held (docs/RELIABILITY.md); a flush of nftables leaves
/// the traps. Polling rather than the kernel's notifications: one XFRM dump and one
/// `nft list tables` per interval, whatever removed what.
extension DataplanePlugin {
    static let repairInterval = Duration.milliseconds(100)

    func startRepairs(metrics: RepairMetrics) {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.repairInterval)
                guard let self, !Task.isCancelled else { return }
                self.repairLayers(metrics: metrics)
            }
        }
        state.withLockedValue { $0.repair = task }
    }

    /// One look at every layer, and the repairs it needs.
    func repairLayers(metrics: RepairMetrics) {
        // Under the state's lock: a bypass removed as its child goes down is never put back.
        let (restored, failure) = state.withLockedValue { state -> (Int, String?) in
            guard let table = state.table else { return (0, nil) }
            do {
                var restored = try table.restoreMissing(plan, interface: state.trapInterface)
                for (device, bypasses) in Dictionary(grouping: state.bypasses.keys, by: \.device) {
                    restored += try table.restoreMissing(bypasses.map(\.policy), interface: device)
                }
                return (restored, nil)
            } catch {
                return (0, "\(error)")
            }
        }
        if restored > 0 {
            metrics.repaired(.xfrm)
            logger.warning("XFRM policies of ted's were removed by another program; put back",
                           metadata: ["ted.policies": "\(restored)"])
            // Under kernel ESP the same flush took charon's policies of the tunnels that are
            // up: their traffic meets ted's traps until they are set up again.
            let (espInKernel, policiesLost) = state.withLockedValue { ($0.espInKernel, $0.policiesLost) }
            if espInKernel { policiesLost?() }
        }
        if let failure { logger.warning("cannot check ted's XFRM policies", metadata: ["ted.error": "\(failure)"]) }

        let (traps, espInKernel, interception) = state.withLockedValue { ($0.table != nil, $0.espInKernel, $0.interception) }
        guard traps || interception != nil, let tables = NFTTables.present() else { return }
        var missing: [(name: String, ruleset: String)] = []
        if traps, !tables.contains("inet \(InboundGuard.tableName)") {
            missing.append((InboundGuard.tableName, inboundGuard(espInKernel: espInKernel).ruleset))
        }
        if let hold, !tables.contains("inet \(HoldTable.tableName)") { missing.append((HoldTable.tableName, hold.table.ruleset)) }
        if let interception, !tables.contains("inet \(NFTInterception.tableName)") {
            missing.append((NFTInterception.tableName, interception.ruleset))
        }
        let repaired = missing.map(\.name)
        guard !missing.isEmpty else { return }
        do {
            // The guard first and all in one transaction: the sooner it is back, the shorter
            // a following XFRM flush could find both layers gone.
            try NFTTables.install(missing.map(\.ruleset))
            if let hold, repaired.contains(HoldTable.tableName) {
                try hold.table.installQueueRules()
                hold.reconciled()
            }
        } catch {
            logger.warning("cannot put back ted's nftables tables", metadata: ["ted.error": "\(error)"])
        }
        if !repaired.isEmpty {
            metrics.repaired(.nftables)
            logger.warning("nftables tables of ted's were removed by another program; put back",
                           metadata: ["ted.tables": "\(repaired.joined(separator: ", "))"])
        }
    }
}
