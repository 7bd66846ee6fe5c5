#if canImport(Glibc)
import Glibc
#endif

/// Kernel settings under /proc/sys.
public enum Sysctl {
    /// Writes `value` to `key` (`net/ipv4/ip_nonlocal_bind`); false when it cannot.
    public static func set(_ key: String, _ value: String) -> Bool {
        guard let file = fopen("/proc/sys/\(key)", "w") else { return false }
        let written = fputs(value, file) >= 0
        return fclose(file) == 0 && written
    }
}
