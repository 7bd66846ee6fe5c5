import CTEDLinux
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// ted's UDP sockets at the system-call edge: bound without `SO_REUSEADDR` (no other
/// process can bind the same port beside ted and take its datagrams) and written with
/// `sendmmsg` that never blocks and never lets one failed datagram stop the others.
public enum UDPSocket {
    /// A non-blocking UDP socket bound to `address`:`port` (an IPv6 wildcard takes IPv4 too).
    public static func bind(_ address: IPAddress, port: UInt16, sendBuffer: Int32 = 0) throws(LinuxError) -> Int32 {
        let bytes = address.bytes
        return try check(bytes.withUnsafeBufferPointer { ted_udp_bind(address.family.rawValue, $0.baseAddress, port, sendBuffer) },
                         "bind UDP \(address.family == .v6 ? "[\(address)]" : "\(address)"):\(port)")
    }

    /// One datagram for `send`.
    public struct Outgoing {
        public var bytes: [UInt8]
        public var address: IPAddress
        public var port: UInt16
        public init(bytes: [UInt8], address: IPAddress, port: UInt16) {
            self.bytes = bytes
            self.address = address
            self.port = port
        }
    }

    /// The largest batch `send` takes at once.
    public static let batch = 64

    /// Sends the datagrams (at most `batch`) on `fd`, whose family is `socketFamily`.
    /// Returns one errno per datagram (0 when it was sent); EAGAIN means it was dropped
    /// because the socket's buffer was full.
    public static func send(_ datagrams: [Outgoing], on fd: Int32, socketFamily: IPAddress.Family) -> [Int32] {
        let count = min(datagrams.count, batch)
        guard count > 0 else { return [] }
        var errors = [Int32](repeating: 0, count: count)
        // One contiguous copy of every payload: stable pointers for the whole call.
        let payloads = datagrams.prefix(count).flatMap(\.bytes)
        var records = [ted_datagram](repeating: ted_datagram(), count: count)
        payloads.withUnsafeBytes { raw in
            var offset = 0
            for index in 0..<count {
                let datagram = datagrams[index]
                records[index].data = raw.baseAddress.map { UnsafeRawPointer($0 + offset) }
                records[index].length = datagram.bytes.count
                records[index].family = datagram.address.family.rawValue
                records[index].port = datagram.port
                withUnsafeMutableBytes(of: &records[index].address) { out in
                    for (position, byte) in datagram.address.bytes.enumerated() { out[position] = byte }
                }
                offset += datagram.bytes.count
            }
            _ = ted_send_datagrams(fd, socketFamily.rawValue, records, Int32(count), &errors)
        }
        return errors
    }

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
