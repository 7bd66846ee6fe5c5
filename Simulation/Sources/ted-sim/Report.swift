import Foundation
import TEDEngine

/// Tables for the terminal and CSV files, from one finished run. Nothing here reads a clock:
/// the same run prints the same bytes.
struct Report {
    let simulation: Simulation
    var lines: [String] = []

    init(_ simulation: Simulation) { self.simulation = simulation }

    static func quantile(_ sorted: [Int64], _ q: Double) -> Int64? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    static func ms(_ nanoseconds: Int64?) -> String {
        guard let nanoseconds else { return "-" }
        return String(format: "%.1f ms", Double(nanoseconds) / 1e6)
    }

    static func seconds(_ nanoseconds: Int64?) -> String {
        guard let nanoseconds else { return "-" }
        return String(format: "%.3f s", Double(nanoseconds) / 1e9)
    }

    static func spread(_ values: [Int64], format: (Int64?) -> String) -> String {
        let sorted = values.sorted()
        return "p50 \(format(quantile(sorted, 0.5)))  p99 \(format(quantile(sorted, 0.99)))  max \(format(sorted.last))"
            + "  (n \(sorted.count))"
    }

    static func counts(_ values: [Int]) -> String {
        let sorted = values.map(Int64.init).sorted()
        let format: (Int64?) -> String = { $0.map { "\($0)" } ?? "-" }
        return "p50 \(format(quantile(sorted, 0.5)))  p99 \(format(quantile(sorted, 0.99)))  max \(format(sorted.last))"
    }

    static func drops(_ drops: [DropReason: Int]) -> String {
        let parts = drops.sorted { $0.key.description < $1.key.description }.map { "\($0.key): \($0.value)" }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    mutating func add(_ line: String = "") { lines.append(line) }
    mutating func row(_ label: String, _ value: String) { lines.append(label.padding(toLength: max(36, label.count + 1), withPad: " ", startingAt: 0) + value) }

    // MARK: - Cold start

    mutating func coldStart() {
        let s = simulation.settings
        let flows = simulation.flows
        let toHubs = flows.filter { simulation.mesh.isHub($0.destination) }.count
        add("== cold start: \(s.hubs) hubs, \(s.branches) branches, \(s.branchPeers) branch peers each, seed \(s.seed), "
            + "loss \(String(format: "%g", s.loss * 100)) %, cache TTL \(s.cacheTTL.nanoseconds / Simulation.second) s, "
            + "negative TTL \(s.negativeTTL.nanoseconds / Simulation.second) s, \(s.retries) retries, hub global rate "
            + "\(s.hubGlobalRate.perSecond)/s burst \(s.hubGlobalRate.burst) ==")
        // During a hub-restart run the flows to hub 0 were reset; the cold start's own times
        // are those of the other flows plus the hub-0 flows' first round, kept below.
        let cold = simulation.coldStartFlows ?? flows
        row("flows", "\(cold.count) (\(toHubs) to hubs, \(cold.count - toHubs) between branches), starting in the first \(s.window / Simulation.second) s")
        let own = cold.filter { $0.discoveredAt != nil }
        row("  tunnel from its own discovery", "\(own.count)")
        row("  tunnel the other side started", "\(cold.filter { $0.tunnelAt != nil && $0.discoveredAt == nil }.count)")
        row("  no tunnel", "\(cold.filter { $0.tunnelAt == nil }.count)")
        row("first packet -> discovery", Self.spread(own.map { $0.discoveredAt! - $0.start }, format: Self.ms))
        row("first packet -> tunnel up", Self.spread(cold.compactMap { flow in flow.tunnelAt.map { $0 - flow.start } }, format: Self.ms))
        row("every flow's tunnel up at", Self.seconds(simulation.coldStartDone) + " (simulated time)")
        row("timeouts (discoveries that failed)", "\(cold.reduce(0) { $0 + $1.timeouts }) in \(cold.filter { $0.timeouts > 0 }.count) flows")
        let t = simulation.coldStartTallies ?? simulation.tallies
        let branches = Array(s.hubs..<(s.hubs + s.branches))
        row("probes sent (all sends)", "\(t.reduce(0) { $0 + $1.probesSent }) total; per branch "
            + Self.counts(branches.map { t[$0].probesSent }))
        row("responses received", "\(t.reduce(0) { $0 + $1.responsesReceived }) total; per branch "
            + Self.counts(branches.map { t[$0].responsesReceived }))
        row("challenges received", "\(t.reduce(0) { $0 + $1.challengesReceived }) total")
        row("IKE negotiations", "\(t.reduce(0) { $0 + $1.ikeNegotiations } / 2) total; per hub "
            + Self.counts((0..<s.hubs).map { t[$0].ikeNegotiations }))
        let responders = simulation.coldStartResponders ?? simulation.responders.map(\.counters)
        row("responder work, all gateways", "\(responders.reduce(0) { $0 + $1.received }) probes, "
            + "\(responders.reduce(0) { $0 + $1.replies }) replies, \(responders.reduce(0) { $0 + $1.challenges }) challenges")
        add()
        add("hub  region   probes  replies  challenges  cookies  drops")
        for hub in 0..<s.hubs {
            let c = responders[hub]
            add(String(format: "%3d  ", hub) + Mesh.regionNames[simulation.mesh.region(hub)].padding(toLength: 7, withPad: " ", startingAt: 0)
                + String(format: "  %6d  %7d  %10d  %7d  ", c.received, c.replies, c.challenges, c.cookiesAccepted) + Self.drops(c.drops))
        }
        add()
    }

    // MARK: - Hub restart

    mutating func hubRestart() {
        let s = simulation.settings
        guard let restart = s.restartAt else { return }
        let flows = simulation.flows.filter { $0.destination == 0 }
        add("== hub restart: hub 0 (\(Mesh.regionNames[simulation.mesh.region(0)])) loses all state at t = "
            + "\(Self.seconds(restart)); \(flows.count) branch tunnels to it go down ==")
        row("branches back", "\(flows.filter { $0.tunnelAt != nil }.count) of \(flows.count)")
        let back = flows.compactMap { $0.tunnelAt.map { $0 - restart } }
        row("restart -> branch's tunnel back", Self.spread(back, format: Self.ms))
        row("first packet after restart", "within one packet interval (\(s.packetInterval / Simulation.millisecond) ms), uniformly")
        if let slowest = flows.indices.max(by: { (flows[$0].tunnelAt ?? .max, $0) < (flows[$1].tunnelAt ?? .max, $1) }) {
            let f = flows[slowest]
            row("slowest branch", "gateway \(f.source) (\(Mesh.regionNames[simulation.mesh.region(f.source)])): "
                + "\(Self.ms(f.tunnelAt.map { $0 - restart })), \(f.probes) probes, \(f.timeouts) timeouts, \(f.packets) packets")
        }
        row("probes from branches to the hub", "\(flows.reduce(0) { $0 + $1.probes }); per branch " + Self.counts(flows.map(\.probes)))
        row("timeouts", "\(flows.reduce(0) { $0 + $1.timeouts }) in \(flows.filter { $0.timeouts > 0 }.count) branches")
        row("failure-cached packets (all runs)", "\(simulation.failedCachedPackets)")
        let c = simulation.responders[0].counters
        row("hub 0 responder after restart", "\(c.received) probes, \(c.replies) replies, \(c.challenges) challenges, "
            + "\(c.cookiesAccepted) cookies taken, drops: \(Self.drops(c.drops))")
        if !c.cookiesRefused.isEmpty {
            row("  cookies refused", c.cookiesRefused.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.key.rawValue): \($0.value)" }.joined(separator: ", "))
        }
        row("every branch back at", Self.seconds(simulation.restartDone.map { $0 - restart }) + " after the restart")
        let bound = Self.starvationBound(s)
        row("no-starvation bound", "\(Self.seconds(bound)) (\(Self.boundText)); "
            + "\(simulation.lateBranches) branches later" + (s.loss == 0 ? " (checked: must be 0)" : " (not checked under loss)"))
        add()
        add("second  probes  answers  proven  challenges  refused                       tunnels back")
        var skipped = 0
        for (second, row) in simulation.perSecond.enumerated() {
            guard row.probes > 0 || row.tunnelsBack > 0 else {
                skipped += 1
                continue
            }
            if skipped > 0 { add("   ...  (\(skipped) second\(skipped == 1 ? "" : "s") without a probe or a tunnel)") }
            skipped = 0
            let refused = row.refusals.values.reduce(0, +)
            let refusedText = "\(refused)" + (refused == 0 ? "" : " (" + Self.drops(row.refusals) + ")")
            add(String(format: "%6d  %6d  %7d  %6d  %10d  ", second, row.probes, row.answers, row.provenAnswers, row.challenges)
                + refusedText.padding(toLength: max(28, refusedText.count), withPad: " ", startingAt: 0)
                + String(format: "  %6d", row.tunnelsBack))
        }
        add()
    }

    /// The slowest branch must be back within this after the restart: its first packet
    /// (one interval), one failed discovery (the longest, at the top of its jitter), the
    /// failure cache's suppression, a second whole discovery, IKE (base plus two of the
    /// longest round trips), and one more interval for the packet that finds the cache
    /// expired. Only a branch refused twice in a row gets near it.
    static func starvationBound(_ s: SimulationSettings) -> Int64 {
        let longest = s.discovery(peerCheck: PeerAddressCheck()).longestDiscovery.nanoseconds
        let rtt = 2 * (Mesh.oneWayMilliseconds.flatMap { $0 }.max() ?? 0) * Simulation.millisecond
        return 2 * s.packetInterval + 2 * longest + s.negativeTTL.nanoseconds + s.ikeBase + 2 * rtt
    }

    static let boundText = "2 packet intervals + 2 longest discoveries + negative TTL + IKE"

    // MARK: - Churn

    mutating func churn() {
        let s = simulation.settings
        guard let life = s.tunnelLife, let first = simulation.markedTallies, let last = simulation.endTallies,
              let before = simulation.markedInitiators, let after = simulation.endInitiators else { return }
        let hours = Double(s.churnUntil - s.measureFrom) / 3600e9
        add("== churn: tunnels live \(life / Simulation.second) s on average (exponential); measured from t = "
            + "\(Self.seconds(s.measureFrom)) for \(String(format: "%g", hours)) h; cache TTL \(s.cacheTTL.nanoseconds / Simulation.second) s; "
            + (s.keepCacheOnDown ? "a tunnel going down keeps its discovery cached ==" : "a tunnel going down forgets the peer (the daemon) =="))
        let branches = Array(s.hubs..<(s.hubs + s.branches))
        let sent = branches.map { last[$0].probesSent - first[$0].probesSent }
        let ike = (0..<simulation.mesh.count).reduce(0) { $0 + last[$1].ikeNegotiations - first[$1].ikeNegotiations } / 2
        let firstSends = branches.reduce(0) { $0 + after[$1].probesSent - before[$1].probesSent }
        let hits = branches.reduce(0) { $0 + after[$1].cacheHits - before[$1].cacheHits }
        row("tunnels down in the span", "\(simulation.tunnelsDownInWindow)")
        row("IKE negotiations in the span", "\(ike)")
        row("discoveries started (first probes)", "\(firstSends); cache hits \(hits)")
        row("probes sent per branch per hour", String(format: "%.1f (all sends; ", Double(sent.reduce(0, +)) / Double(branches.count) / hours)
            + Self.counts(sent) + " per branch in the span)")
        row("tunnel down -> back, per flow", Self.spread(simulation.recoveries, format: Self.ms))
        add()
    }

    // MARK: - Invariants

    mutating func invariants() {
        let sim = simulation
        row("invariants", sim.violations.isEmpty ? "hold" : "\(sim.violations.count) VIOLATED")
        row("  largest reply / probe", String(format: "%.2f (bound 3)", sim.largestAnswerRatio))
        row("  largest challenge / probe", String(format: "%.2f (bound 1)", sim.largestChallengeRatio))
        row("  datagrams lost / passed on", "\(sim.datagramsLost) / \(sim.passedOn)")
        row("  initiator: ignored, resource-limit", "\(Self.ignoredText(sim.ignored)), \(sim.resourceFailures)")
        row("  events simulated", "\(sim.events), ending at t = \(Self.seconds(sim.now))")
        for violation in sim.violations.prefix(20) { add("  VIOLATION: \(violation)") }
    }

    static func ignoredText(_ ignored: [IgnoreReason: Int]) -> String {
        ignored.isEmpty ? "none" : ignored.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key): \($0.value)" }
            .joined(separator: " ")
    }

    // MARK: - CSV

    func gatewaysCSV() -> String {
        var text = "gateway,role,region,probes_sent,probe_bytes,responses_received,challenges_received,ike_negotiations,"
            + "probes_received,replies,challenges_sent,cookies_accepted,drops\n"
        let c = simulation.responders.map(\.counters)
        for (g, t) in simulation.tallies.enumerated() {
            text += "\(g),\(simulation.mesh.isHub(g) ? "hub" : "branch"),\(Mesh.regionNames[simulation.mesh.region(g)]),"
                + "\(t.probesSent),\(t.probeBytes),\(t.responsesReceived),\(t.challengesReceived),\(t.ikeNegotiations),"
                + "\(c[g].received),\(c[g].replies),\(c[g].challenges),\(c[g].cookiesAccepted),\(c[g].totalDrops)\n"
        }
        return text
    }

    func flowsCSV() -> String {
        var text = "source,destination,start_ns,round_start_ns,discovered_ns,tunnel_ns,probes,timeouts,packets\n"
        for f in simulation.flows {
            text += "\(f.source),\(f.destination),\(f.start),\(f.roundStart),\(f.discoveredAt.map(String.init) ?? ""),"
                + "\(f.tunnelAt.map(String.init) ?? ""),\(f.probes),\(f.timeouts),\(f.packets)\n"
        }
        return text
    }

    func restartCSV() -> String {
        var text = "second,probes,answers,proven_answers,challenges,refused,tunnels_back\n"
        for (second, row) in simulation.perSecond.enumerated() {
            text += "\(second),\(row.probes),\(row.answers),\(row.provenAnswers),\(row.challenges),"
                + "\(row.refusals.values.reduce(0, +)),\(row.tunnelsBack)\n"
        }
        return text
    }
}
