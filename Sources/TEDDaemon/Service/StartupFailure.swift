import TEDLinux

#if canImport(Glibc)
import Glibc
#endif

/// One line for an operator when ted cannot start: what failed and what to do about it.
public enum StartupFailure {
    public static func advice(for error: any Error) -> String {
        if let error = error as? LinuxError, error.operation.hasPrefix("bind netfilter queue"), error.code == EBUSY {
            return "\(error): another program reads that netfilter queue; set 'hold: { queue: N }' to a free one, or 'hold: off'"
        }
        if let error = error as? LinuxError {
            switch error.code {
            case EADDRINUSE:
                return "\(error): another process holds that port (see `ss -ulpn`); stop it, or change 'listen' / 'dataplane.intercept-port'"
            case EPERM, EACCES:
                return "\(error): ted needs CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (run it as root, or grant them in its unit)"
            case EADDRNOTAVAIL:
                return "\(error): no interface holds that address; fix 'listen' (0.0.0.0 or [::] listens everywhere)"
            default:
                return "\(error)"
            }
        }
        if let error = error as? CommandError, error.command.contains("iptables") {
            return "\(error): holding first packets needs iptables (Debian package iptables) for its NFQUEUE rule; install it, or set 'hold: off'"
        }
        if let error = error as? CommandError {
            return "\(error): is nftables / iproute2 installed, and does ted run with CAP_NET_ADMIN?"
        }
        return "\(error)"
    }

    /// Creates the control socket's directory (mode 0750) when missing; throws with advice.
    public static func makeRuntimeDirectory(for socketPath: String) throws(ControlSocketError) {
        guard let slash = socketPath.lastIndex(of: "/"), slash != socketPath.startIndex else { return }
        do {
            try LocalSystem.makeDirectories(String(socketPath[..<slash]), mode: 0o750)
        } catch {
            throw ControlSocketError("cannot \(error.operation) for the control socket: \(String(cString: strerror(error.code)))")
        }
    }
}
