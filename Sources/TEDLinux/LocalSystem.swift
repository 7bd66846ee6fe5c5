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
}
