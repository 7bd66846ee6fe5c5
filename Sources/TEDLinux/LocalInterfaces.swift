import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// This host's interface addresses and IPv4 subnet broadcast addresses (getifaddrs).
public struct LocalInterfaces: Sendable {
    public var addresses: Set<IPAddress> = []
    public var broadcasts: Set<IPAddress> = []

    /// Read now; empty when the interfaces cannot be listed.
    public static func current() -> LocalInterfaces {
        var result = LocalInterfaces()
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return result }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor?.pointee {
            defer { cursor = entry.ifa_next }
            if let address = entry.ifa_addr.flatMap(IPAddress.init(sockaddr:)) { result.addresses.insert(address) }
            if entry.ifa_flags & UInt32(IFF_BROADCAST) != 0,
               let broadcast = entry.ifa_ifu.ifu_broadaddr.flatMap(IPAddress.init(sockaddr:)) {
                result.broadcasts.insert(broadcast)
            }
        }
        return result
    }
}

extension IPAddress {
    /// The address in a `sockaddr_in` or `sockaddr_in6`; nil for other families.
    init?(sockaddr pointer: UnsafeMutablePointer<sockaddr>) {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            let v4 = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            self.init(v4: UInt32(bigEndian: v4))
        case AF_INET6:
            let bytes = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }
            }
            self.init(bytes: bytes)
        default:
            return nil
        }
    }
}
