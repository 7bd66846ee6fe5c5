#if canImport(Glibc)
import Glibc
#endif

/// The local system's users, groups and directories, as the daemon's edges need them.
public enum LocalSystem {
    /// The id of the group `name`, nil when there is none.
    public static func groupID(named name: String) -> gid_t? {
        getgrnam(name).map { $0.pointee.gr_gid }
    }

    /// Creates every missing directory of the absolute `path` with `mode`; throws the first
    /// that cannot be created, naming it.
    public static func makeDirectories(_ path: String, mode: mode_t) throws(LinuxError) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0, errno != EEXIST { throw LinuxError("create \(prefix)", code: errno) }
        }
    }

    /// The wall clock (CLOCK_REALTIME): seconds and nanoseconds since the epoch.
    public static func wallClock() -> (seconds: Int, nanoseconds: Int) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (now.tv_sec, now.tv_nsec)
    }

    /// Removes the file `path`, if there is one.
    public static func removeFile(_ path: String) { _ = unlink(path) }

    /// Whether anything exists at `path`.
    public static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
