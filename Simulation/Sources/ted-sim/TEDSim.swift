import ArgumentParser
import Foundation
import NIOCore
import TEDEngine

@main
struct TEDSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ted-sim",
        abstract: "A deterministic discrete-event simulation of a TED mesh: hubs and branches running the real engines.",
        discussion: "Time is simulated (no sleeping, no sockets); the same seed prints the same bytes.",
        subcommands: [ColdStart.self, HubRestart.self, Churn.self])
}

struct MeshOptions: ParsableArguments {
    @Option(help: "Branch gateways.") var branches = 100
    @Option(help: "Hub gateways; every branch talks to every hub.") var hubs = 10
    @Option(name: .customLong("branch-peers"), help: "Other branches each branch talks to.") var branchPeers = 20
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Probability that a datagram is lost (0...0.9).") var loss = 0.0
    @Option(name: .customLong("cache-ttl"), help: "The initiators' discovery cache TTL in seconds.") var cacheTTL = 300
    @Option(name: .customLong("negative-ttl"), help: "The initiators' failure cache TTL in seconds.") var negativeTTL = 30
    @Option(help: "The initiators' retransmissions after the first probe (0...10).") var retries = 3
    @Option(name: .customLong("hub-global-rate"), help: "The hubs' responder global-rate (probes/s; burst twice that).")
    var hubGlobalRate = ResponderSettings.defaultGlobalRate.perSecond
    @Option(help: "Seconds in which the flows start.") var window = 60
    @Option(help: "Simulated seconds after which the run stops.") var horizon = 3_600
    @Option(help: "Directory for the CSV files.") var out = "ted-sim-out"

    func validate() throws {
        guard hubs >= 1 else { throw ValidationError("--hubs must be at least 1") }
        guard branches >= 1, hubs + branches <= Mesh.maximumGateways else {
            throw ValidationError("--branches must be 1...\(Mesh.maximumGateways - hubs)")
        }
        guard branchPeers >= 0 else { throw ValidationError("--branch-peers must not be negative") }
        guard (0...0.9).contains(loss) else { throw ValidationError("--loss must be 0...0.9") }
        guard DiscoverySettings.validTTL.contains(.seconds(Int64(cacheTTL))) else {
            throw ValidationError("--cache-ttl must be 0...86400")
        }
        guard DiscoverySettings.validTTL.contains(.seconds(Int64(negativeTTL))) else {
            throw ValidationError("--negative-ttl must be 0...86400")
        }
        guard DiscoverySettings.validRetries.contains(retries) else { throw ValidationError("--retries must be 0...10") }
        guard (1...RateLimit.validPerSecond.upperBound / 2).contains(hubGlobalRate) else {
            throw ValidationError("--hub-global-rate must be 1...\(RateLimit.validPerSecond.upperBound / 2)")
        }
        guard window >= 1, horizon > window else { throw ValidationError("--window must be at least 1 and below --horizon") }
    }

    var settings: SimulationSettings {
        var s = SimulationSettings()
        s.branches = branches
        s.hubs = hubs
        s.branchPeers = branchPeers
        s.seed = seed
        s.loss = loss
        s.cacheTTL = .seconds(Int64(cacheTTL))
        s.negativeTTL = .seconds(Int64(negativeTTL))
        s.retries = retries
        s.hubGlobalRate = RateLimit(perSecond: hubGlobalRate, burst: 2 * hubGlobalRate)
        s.window = Int64(window) * Simulation.second
        s.horizon = Int64(horizon) * Simulation.second
        return s
    }

    /// Prints the report, writes the CSV files, and exits 1 when an invariant failed.
    func finish(_ simulation: Simulation, _ report: Report, restart: Bool, name: String? = nil) throws {
        print(report.lines.joined(separator: "\n"))
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let prefix = name ?? (restart ? "hub-restart" : "cold-start")
        var files = [("\(prefix)-gateways.csv", report.gatewaysCSV()), ("\(prefix)-flows.csv", report.flowsCSV())]
        if restart { files.append(("hub-restart-seconds.csv", report.restartCSV())) }
        for (name, text) in files {
            try text.write(toFile: out + "/" + name, atomically: true, encoding: .utf8)
        }
        print("csv: " + files.map { out + "/" + $0.0 }.joined(separator: " "))
        if !simulation.violations.isEmpty { throw ExitCode(1) }
    }
}

struct ColdStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cold-start",
        abstract: "Every branch starts talking to every hub and to random branches within the first minute.")

    @OptionGroup var options: MeshOptions

    func run() throws {
        var simulation = Simulation(options.settings)
        simulation.run()
        var report = Report(simulation)
        report.coldStart()
        report.invariants()
        try options.finish(simulation, report, restart: false)
    }
}

struct HubRestart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub-restart",
        abstract: "The cold start, then hub 0 loses all state and every branch rediscovers it at once.")

    @OptionGroup var options: MeshOptions
    @Option(name: .customLong("restart-at"), help: "Simulated second of the restart (after the cold start is over).")
    var restartAt = 120

    func validate() throws {
        guard restartAt > options.window, restartAt < options.horizon else {
            throw ValidationError("--restart-at must lie after --window and before --horizon")
        }
    }

    func run() throws {
        var settings = options.settings
        settings.restartAt = Int64(restartAt) * Simulation.second
        var simulation = Simulation(settings)
        simulation.run()
        var report = Report(simulation)
        report.coldStart()
        report.hubRestart()
        report.invariants()
        try options.finish(simulation, report, restart: true)
    }
}

struct Churn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "The cold start, then tunnels go down at random for an hour and their flows rediscover: probes per site per hour.")

    @OptionGroup var options: MeshOptions
    @Option(name: .customLong("tunnel-life"), help: "Mean life of a tunnel in seconds (exponential).") var tunnelLife = 600
    @Option(help: "Hours measured after the cold start.") var hours = 1.0
    @Flag(name: .customLong("keep-cache"), help: "A tunnel going down keeps its discovery cached (the daemon forgets it).")
    var keepCache = false

    func validate() throws {
        guard tunnelLife >= 1 else { throw ValidationError("--tunnel-life must be at least 1") }
        guard hours > 0, hours <= 24 else { throw ValidationError("--hours must be in (0, 24]") }
    }

    func run() throws {
        var settings = options.settings
        settings.tunnelLife = Int64(tunnelLife) * Simulation.second
        settings.keepCacheOnDown = keepCache
        settings.measureFrom = settings.window + 60 * Simulation.second
        settings.churnUntil = settings.measureFrom + Int64(hours * 3600) * Simulation.second
        settings.horizon = max(settings.horizon, settings.churnUntil + 600 * Simulation.second)
        var simulation = Simulation(settings)
        simulation.run()
        var report = Report(simulation)
        report.coldStart()
        report.churn()
        report.invariants()
        try options.finish(simulation, report, restart: false, name: "churn")
    }
}
