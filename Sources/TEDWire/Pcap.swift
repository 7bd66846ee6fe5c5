import TEDModel

/// Classic pcap files around TED datagrams, for Wireshark and tshark.
///
/// The writer frames each datagram in an IPv4 or IPv6 header and a UDP header
/// (LINKTYPE_RAW); the reader takes raw, Ethernet and Linux "cooked" (SLL, SLL2) captures,
/// as tcpdump and tshark write them, and returns the UDP datagrams to or from a port.
public enum Pcap {
    public static let linkTypeRaw: UInt32 = 101

    /// One UDP datagram with its addresses.
    public struct Datagram: Hashable, Sendable {
        public let source: IPAddress
        public let sourcePort: UInt16
        public let destination: IPAddress
        public let destinationPort: UInt16
        public let payload: [UInt8]

        public init(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16, payload: [UInt8]) {
            self.source = source
            self.sourcePort = sourcePort
            self.destination = destination
            self.destinationPort = destinationPort
            self.payload = payload
        }
    }

    /// The 24-byte global header (microsecond timestamps, LINKTYPE_RAW), little-endian.
    public static var fileHeader: [UInt8] {
        le32(0xa1b2_c3d4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65_535) + le32(linkTypeRaw)
    }

    /// One record: its header and the IP packet carrying the datagram.
    public static func record(_ datagram: Datagram, seconds: UInt32 = 0, microseconds: UInt32 = 0) -> [UInt8] {
        let packet = ipPacket(datagram)
        return le32(seconds) + le32(microseconds) + le32(UInt32(packet.count)) + le32(UInt32(packet.count)) + packet
    }

    /// A whole file holding the datagrams in order, one per millisecond.
    public static func file(_ datagrams: [Datagram]) -> [UInt8] {
        var bytes = fileHeader
        for (index, datagram) in datagrams.enumerated() {
            bytes += record(datagram, seconds: UInt32(index / 1000), microseconds: UInt32(index % 1000 * 1000))
        }
        return bytes
    }

    static func ipPacket(_ d: Datagram) -> [UInt8] {
        let udpLength = 8 + d.payload.count
        var udp = be16(d.sourcePort) + be16(d.destinationPort) + be16(UInt16(truncatingIfNeeded: udpLength)) + [0, 0]
        udp += d.payload
        if d.source.family == .v4 {
            var header: [UInt8] = [0x45, 0] + be16(UInt16(truncatingIfNeeded: 20 + udpLength)) + [0, 0, 0x40, 0, 64, 17, 0, 0]
            header += d.source.bytes + d.destination.bytes
            let checksum = internetChecksum(header)
            header[10] = UInt8(checksum >> 8)
            header[11] = UInt8(checksum & 0xff)
            // UDP over IPv4 may carry a zero checksum.
            return header + udp
        }
        var header: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(truncatingIfNeeded: udpLength)) + [17, 64]
        header += d.source.bytes + d.destination.bytes
        // UDP over IPv6 must carry a checksum (RFC 8200 8.1): pseudo-header + UDP.
        let pseudo = d.source.bytes + d.destination.bytes + be32(UInt32(udpLength)) + [0, 0, 0, 17]
        var checksum = internetChecksum(pseudo + udp)
        if checksum == 0 { checksum = 0xffff }
        udp[6] = UInt8(checksum >> 8)
        udp[7] = UInt8(checksum & 0xff)
        return header + udp
    }

    static func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// Why a pcap file could not be read.
    public struct ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The UDP datagrams to or from `port` in a classic pcap file (other packets are skipped).
    public static func datagrams(in bytes: [UInt8], port: UInt16 = ISAKMP.port) throws(ReadError) -> [Datagram] {
        guard bytes.count >= 24 else { throw ReadError(description: "not a pcap file: \(bytes.count) bytes") }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        let littleEndian: Bool
        switch magic {
        case 0xa1b2_c3d4, 0xa1b2_3c4d: littleEndian = true
        case 0xd4c3_b2a1, 0x4d3c_b2a1: littleEndian = false
        case 0x0a0d_0d0a: throw ReadError(description: "pcapng is not read; convert with: editcap -F pcap in.pcapng out.pcap")
        default: throw ReadError(description: "not a pcap file (magic 0x\(String(magic, radix: 16)))")
        }
        func u32(_ offset: Int) -> UInt32 {
            let b = bytes[offset..<offset + 4].map(UInt32.init)
            return littleEndian ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[3] | b[2] << 8 | b[1] << 16 | b[0] << 24
        }
        let linkType = u32(20) & 0x0fff_ffff
        var result: [Datagram] = []
        var offset = 24
        while offset + 16 <= bytes.count {
            let captured = Int(u32(offset + 8))
            offset += 16
            guard captured <= bytes.count - offset else { throw ReadError(description: "truncated record at byte \(offset)") }
            let frame = bytes[offset..<offset + captured]
            offset += captured
            if let packet = networkPacket(frame, linkType: linkType), let datagram = udp(packet), 
               datagram.sourcePort == port || datagram.destinationPort == port {
                result.append(datagram)
            }
        }
        return result
    }

    /// The IP packet inside a link-layer frame.
    static func networkPacket(_ frame: ArraySlice<UInt8>, linkType: UInt32) -> ArraySlice<UInt8>? {
        let start = frame.startIndex
        switch linkType {
        case 101, 228, 229: return frame
        case 1:  // Ethernet, with up to two VLAN tags
            var at = start + 12
            while at + 2 <= frame.endIndex, frame[at] == 0x81 || frame[at] == 0x88, frame[at + 1] == 0x00 || frame[at + 1] == 0xa8 {
                at += 4
            }
            return at + 2 <= frame.endIndex ? frame[(at + 2)...] : nil
        case 113: return frame.count >= 16 ? frame[(start + 16)...] : nil  // Linux SLL
        case 276: return frame.count >= 20 ? frame[(start + 20)...] : nil  // Linux SLL2
        default: return nil
        }
    }

    static func udp(_ packet: ArraySlice<UInt8>) -> Datagram? {
        guard let first = packet.first else { return nil }
        let p = Array(packet)
        let family: IPAddress.Family, headerLength: Int, proto: UInt8
        switch first >> 4 {
        case 4:
            headerLength = Int(first & 0x0f) * 4
            guard p.count >= 20, headerLength >= 20 else { return nil }
            family = .v4
            proto = p[9]
        case 6:
            guard p.count >= 40 else { return nil }
            family = .v6
            headerLength = 40
            proto = p[6]
        default:
            return nil
        }
        let addressOffset = family == .v4 ? 12 : 8, size = family.byteCount
        guard proto == 17, p.count >= headerLength + 8,
              let source = IPAddress(bytes: p[addressOffset..<addressOffset + size]),
              let destination = IPAddress(bytes: p[addressOffset + size..<addressOffset + 2 * size]) else { return nil }
        let udpLength = Int(p[headerLength + 4]) << 8 | Int(p[headerLength + 5])
        guard udpLength >= 8, headerLength + udpLength <= p.count else { return nil }
        return Datagram(source: source, sourcePort: UInt16(p[headerLength]) << 8 | UInt16(p[headerLength + 1]),
                        destination: destination,
                        destinationPort: UInt16(p[headerLength + 2]) << 8 | UInt16(p[headerLength + 3]),
                        payload: Array(p[(headerLength + 8)..<(headerLength + udpLength)]))
    }

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { (0..<4).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}
