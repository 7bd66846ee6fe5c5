import Foundation

#if canImport(Glibc)
import Glibc

/// What a killed test run leaves behind, found and removed by the next run. Every network
/// namespace a test creates is named `<prefix><pid>-…` after the test process, and the run
/// leaves a marker, /run/ted-tests/<prefix><pid>, holding that process's start time (so a
/// pid reused by another process is not taken for the run). The first time a process asks
/// for its tag it removes the namespaces (and the processes in them, by pid) of the runs of
/// that prefix whose process is gone, and only those; scripts/lib/reap.sh does the same for
/// the shell suites, with the same markers.
public enum TestRuns {
    public static let markers = "/run/ted-tests"

    /// This process's tag for `prefix`, say "tedvici1234": reaps the dead runs of `prefix`
    /// once, then marks this run. `leftovers` names what else a namespace of `prefix` came
    /// with (its work directory), removed with it.
    public static func tag(_ prefix: String, leftovers: @escaping @Sendable (String) -> [String] = { _ in [] }) -> String {
        let tag = "\(prefix)\(getpid())"
        state.lock.lock()
        defer { state.lock.unlock() }
        guard !state.tagged.contains(prefix) else { return tag }
        reapDeadRuns(prefix: prefix, leftovers: leftovers)
        mkdir(markers, 0o755)
        try? (startTime(of: getpid()) ?? "").write(toFile: "\(markers)/\(tag)", atomically: true, encoding: .utf8)
        state.tagged.insert(prefix)
        return tag
    }

    /// Removes every namespace `<prefix><pid>-…` whose run is gone, the processes in it
    /// first (by pid), what `leftovers` names for it, and that run's marker; the names of the
    /// namespaces removed.
    @discardableResult
    public static func reapDeadRuns(prefix: String, leftovers: (String) -> [String] = { _ in [] }) -> [String] {
        var reaped: [String] = []
        let listing = runCommand("/usr/bin/env", ["ip", "netns", "list"]).stdout
        for line in listing.split(separator: "\n").prefix(10_000) {
            let name = String(line.split(separator: " ").first ?? "")
            guard let pid = runPID(name, prefix: prefix), !isAlive(pid, tag: "\(prefix)\(pid)") else { continue }
            let inside = runCommand("/usr/bin/env", ["ip", "netns", "pids", name]).stdout
            for process in inside.split(separator: "\n").compactMap({ pid_t($0) }) { kill(process, SIGKILL) }
            _ = runCommand("/usr/bin/env", ["ip", "netns", "del", name])
            for path in leftovers(name) { try? FileManager.default.removeItem(atPath: path) }
            reaped.append(name)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: markers)) ?? []
        for name in names {
            guard let pid = runPID(name + "-", prefix: prefix), !isAlive(pid, tag: name) else { continue }
            unlink("\(markers)/\(name)")
        }
        return reaped
    }

    /// The pid in `<prefix><pid>-…`, nil for any other name.
    public static func runPID(_ name: String, prefix: String) -> pid_t? {
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, name.dropFirst(prefix.count + digits.count).first == "-" else { return nil }
        return pid_t(digits)
    }

    /// Whether `pid` runs and is the process that marked `tag` (without a marker, whether it runs).
    public static func isAlive(_ pid: pid_t, tag: String) -> Bool {
        guard let start = startTime(of: pid) else { return false }
        guard let marked = try? String(contentsOfFile: "\(markers)/\(tag)", encoding: .utf8) else { return true }
        return marked == start
    }

    /// Field 22 of /proc/<pid>/stat, the start time in clock ticks after boot; nil when the
    /// process is gone or a zombie.
    public static func startTime(of pid: pid_t) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return String(fields[19])
    }

    private static let state = TaggedPrefixes()
}

private final class TaggedPrefixes: @unchecked Sendable {
    let lock = NSLock()
    var tagged: Set<String> = []
}
#endif
