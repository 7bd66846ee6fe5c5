import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// This host's interface addresses and IPv4 subnet broadcast addresses (getifaddrs).
public struct LocalInterfaces: Sendable {
    public var addresses: Set<IPAddress> = []
    public var broadcasts: Set<IPAddress> = []

    public init() {}

    /// Read now; nil when the interfaces cannot be listed (the caller keeps what it had).
    public static func current() -> LocalInterfaces? {
        var result = LocalInterfaces()
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor?.pointee {
            defer { cursor = entry.ifa_next }
            guard let address = entry.ifa_addr.flatMap(IPAddress.init(sockaddr:)) else { continue }
            result.addresses.insert(address)
            // The subnet broadcast from address and netmask: an address added without `brd`
            // has no broadcast attribute, yet the kernel still takes its subnet broadcast.
            if address.family == .v4, let mask = entry.ifa_netmask.flatMap(IPAddress.init(sockaddr:)),
               mask.bits != 0xffff_ffff, mask.bits != 0xffff_fffe {
                result.broadcasts.insert(IPAddress(v4: UInt32(truncatingIfNeeded: address.bits | ~mask.bits)))
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
