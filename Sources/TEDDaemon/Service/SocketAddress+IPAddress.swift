import NIOCore
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

extension IPAddress {
    /// The NIO socket address for this address and a port, built without text parsing.
    func socketAddress(port: UInt16) -> SocketAddress {
        switch family {
        case .v4:
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port.bigEndian
            raw.sin_addr.s_addr = UInt32(truncatingIfNeeded: bits).bigEndian
            return SocketAddress(raw, host: "")
        case .v6:
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { out in
                for (index, byte) in bytes.enumerated() { out[index] = byte }
            }
            return SocketAddress(raw, host: "")
        }
    }

    /// The IP address of a NIO socket address (nil for UNIX sockets).
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            self.init(v4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var value: UInt128 = 0
            withUnsafeBytes(of: v6.address.sin6_addr) { raw in
                for byte in raw { value = (value << 8) | UInt128(byte) }
            }
            let address = IPAddress(v6: value)
            // An IPv4-mapped source on a dual-stack socket is an IPv4 peer.
            if value >> 32 == 0xffff { self.init(v4: UInt32(truncatingIfNeeded: value)) } else { self = address }
        case .unixDomainSocket:
            return nil
        }
    }
}
