import NIOCore
import TEDModel
import TEDWire

#if canImport(Glibc)
import Glibc
#endif

/// Appends every TED datagram the node sends or receives to a classic pcap file
/// (configuration key `capture`), for Wireshark with `contrib/wireshark/ted.lua`.
/// Used only on the node's event loop.
final class PcapCapture {
    private let file: UnsafeMutablePointer<FILE>
    private let start = NIODeadline.now()

    init?(path: String) {
        guard let file = fopen(path, "wb") else { return nil }
        self.file = file
        write(Pcap.fileHeader)
    }

    deinit { fclose(file) }

    func record(_ payload: ByteBuffer, from source: IPAddress, port sourcePort: UInt16,
                to destination: IPAddress, port destinationPort: UInt16) {
        guard source.family == destination.family else { return }
        let elapsed = (NIODeadline.now() - start).nanoseconds / 1000
        write(Pcap.record(Pcap.Datagram(source: source, sourcePort: sourcePort, destination: destination,
                                        destinationPort: destinationPort, payload: Array(payload.readableBytesView)),
                          seconds: UInt32(truncatingIfNeeded: elapsed / 1_000_000),
                          microseconds: UInt32(truncatingIfNeeded: elapsed % 1_000_000)))
        fflush(file)
    }

    private func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }
}

/// The capture file could not be opened for writing.
public struct CaptureError: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "cannot write the capture file \(path)" }
}
