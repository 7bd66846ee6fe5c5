import CTEDLinux
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// ted's UDP sockets at the system-call edge: bound without `SO_REUSEADDR` (no other
/// process can bind the same port beside ted and take its datagrams), read with
/// `recvmmsg` by one thread (`UDPReader`) and written with `sendmmsg` that never blocks and
/// never lets one failed datagram stop the others (`SendBatch`).
public enum UDPSocket {
    /// A UDP socket bound to `address`:`port` (an IPv6 wildcard takes IPv4 too), both of its
    /// buffers `buffer` bytes (0: the system's default), whose reads block for at most
    /// `receiveTimeout` milliseconds.
    public static func bind(_ address: IPAddress, port: UInt16, buffer: Int32 = 0,
                            receiveTimeout: Int32 = 200) throws(LinuxError) -> Int32 {
        let bytes = address.bytes
        return try check(bytes.withUnsafeBufferPointer {
            ted_udp_bind(address.family.rawValue, $0.baseAddress, port, buffer, receiveTimeout)
        }, "bind UDP \(address.family == .v6 ? "[\(address)]" : "\(address)"):\(port)")
    }

    /// The port `fd` is bound to.
    public static func localPort(of fd: Int32) throws(LinuxError) -> UInt16 {
        UInt16(truncatingIfNeeded: try check(ted_local_port(fd), "read the bound port"))
    }

    /// The largest batch one `sendmmsg` or `recvmmsg` takes.
    public static let batch = 64

    /// The symbolic name of an errno (`EACCES`), for metric labels and logs.
    public static func errnoName(_ code: Int32) -> String {
        switch code {
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case EAGAIN: "EAGAIN"
        case ENETUNREACH: "ENETUNREACH"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case EINVAL: "EINVAL"
        case EMSGSIZE: "EMSGSIZE"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case ECONNREFUSED: "ECONNREFUSED"
        case ENOBUFS: "ENOBUFS"
        case ENOMEM: "ENOMEM"
        case EAFNOSUPPORT: "EAFNOSUPPORT"
        case EDESTADDRREQ: "EDESTADDRREQ"
        default: "errno\(code)"
        }
    }
}
