import CoreMetrics
import TEDConfig

#if canImport(Glibc)
import Glibc
#endif

/// How the data plane carries ESP: `kernel-esp` (the kernel's XFRM), `libipsec` (charon's
/// kernel-libipsec through a tunnel device), or `none` (no traps: ted only discovers).
public enum DataplaneMode: String, CaseIterable, Sendable {
    case kernelESP = "kernel-esp"
    case libipsec
    case none
}

/// What alerts and dashboards ask beside the counts, rendered at scrape time from their
/// owners: which build runs and since when (the process), the data plane's mode and the
/// first packets held now (the plugins).
enum HealthMetrics {
    /// The text of every scrape, after the counts: the plugins are asked each time.
    static func source(plugins: [any DaemonPlugin]) -> @Sendable () -> String {
        { render(mode: plugins.lazy.compactMap(\.dataplaneMode).first ?? .none,
                 held: plugins.lazy.compactMap { $0.held() }.first?.packets ?? 0) }
    }

    static func render(mode: DataplaneMode, held: Int, version: String = Version.number, commit: String = Version.commit,
                       started: Double = ProcessStart.seconds) -> String {
        var text = PrometheusText()
        text.info("ted_build_info", "The running build: its version and git commit.", [("version", version), ("commit", commit)])
        text.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", started)
        text.info("ted_dataplane_info", "How ESP is carried: kernel-esp, libipsec (charon's, through ipsec0), or none (no traps).",
                  [("mode", mode.rawValue)])
        text.gauge("ted_held_packets", "First packets held now for their tunnel.", held)
        return text.rendered
    }
}

/// charon, as the hand-off sees it (`IKEHandoff`): whether ted holds a working VICI
/// connection now, and how often it had to make one again after losing it.
struct IKEMetrics: Sendable {
    let connected: Gauge
    let reconnects: Counter

    init(registry: MetricsRegistry) {
        connected = Gauge(label: "ted_ike_connected", factory: registry)
        reconnects = Counter(label: "ted_ike_reconnects_total", factory: registry)
        connected.record(0)
    }
}

/// When this process started, in seconds since the Unix epoch: the kernel's start time of
/// the process (`/proc/self/stat` field 22, in clock ticks after boot, plus `/proc/stat`'s
/// `btime`), or failing that the first time it was asked. One value for the process's
/// life: reloads do not change it.
enum ProcessStart {
    static let seconds: Double = fromProc() ?? wallClock()

    static func fromProc() -> Double? {
        guard let stat = readTextFile("/proc/self/stat", maxBytes: 4_096),
              let boot = readTextFile("/proc/stat", maxBytes: 1 << 20),
              let ticks = startTicks(stat: stat), let btime = bootTime(stat: boot) else { return nil }
        let perSecond = sysconf(Int32(_SC_CLK_TCK))
        guard perSecond > 0 else { return nil }
        return Double(btime) + Double(ticks) / Double(perSecond)
    }

    /// Field 22 of `/proc/<pid>/stat`, counted after the command name's closing parenthesis
    /// (the name may hold spaces and parentheses).
    static func startTicks(stat: String) -> UInt64? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    static func bootTime(stat: String) -> UInt64? {
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return UInt64(line.dropFirst("btime ".count).trimmingPrefix(while: { $0 == " " }))
        }
        return nil
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
