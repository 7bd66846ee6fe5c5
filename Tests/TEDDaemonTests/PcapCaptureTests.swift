import NIOCore
import Testing
import TEDConfig
import TEDModel
import TEDWire
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The capture file: appended to, bounded with one rotation, never written over when it is
/// not ours, and written off the event loop through a bounded queue.
@Suite(.serialized) struct PcapCaptureTests {
    static func path(_ name: String) -> String {
        let path = "/tmp/ted-capture-test-\(getpid())-\(name).pcap"
        unlink(path)
        unlink(path + ".1")
        return path
    }

    /// Records `count` datagrams whose payloads are 100 bytes of `first`, `first + 1`, ...
    static func record(_ capture: PcapCapture, _ count: Int, first: UInt8 = 1) {
        for index in 0..<count {
            capture.record(ByteBuffer(bytes: [UInt8](repeating: first + UInt8(index), count: 100)),
                           from: IPAddress("198.51.100.1")!, port: 500, to: IPAddress("198.51.100.2")!, port: 500)
        }
    }

    /// The first payload byte of every record, in file order.
    static func payloads(_ path: String) throws -> [UInt8] {
        try Pcap.datagrams(in: try #require(readFileBytes(path)), port: 500).map { $0.payload.first ?? 0 }
    }

    static func write(_ bytes: [UInt8], to path: String) {
        let file = fopen(path, "wb")
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }

    @Test func newFileHoldsEveryRecord() throws {
        let path = Self.path("new")
        let capture = try PcapCapture(path: path, maxBytes: 1 << 20)
        Self.record(capture, 3)
        capture.close()
        #expect(try Self.payloads(path) == [1, 2, 3])
    }

    @Test func appendKeepsEarlierRecords() throws {
        let path = Self.path("append")
        let first = try PcapCapture(path: path, maxBytes: 1 << 20)
        Self.record(first, 2)
        first.close()
        let second = try PcapCapture(path: path, maxBytes: 1 << 20)
        Self.record(second, 2, first: 3)
        second.close()
        #expect(try Self.payloads(path) == [1, 2, 3, 4])
    }

    @Test func partialLastRecordIsCutBeforeAppending() throws {
        let path = Self.path("partial")
        let datagram = Pcap.Datagram(source: IPAddress("198.51.100.1")!, sourcePort: 500,
                                     destination: IPAddress("198.51.100.2")!, destinationPort: 500,
                                     payload: [UInt8](repeating: 1, count: 100))
        let whole = Pcap.fileHeader + Pcap.record(datagram)
        Self.write(whole + Array(Pcap.record(datagram).prefix(30)), to: path)
        let capture = try PcapCapture(path: path, maxBytes: 1 << 20)
        Self.record(capture, 1, first: 2)
        capture.close()
        #expect(try Self.payloads(path) == [1, 2])
    }

    /// Each record is 16 + 20 + 8 + 100 = 144 bytes: a 24 + 3 x 144 = 456-byte bound holds three.
    @Test func rotatesToDotOneAtTheBound() throws {
        let path = Self.path("rotate")
        let capture = try PcapCapture(path: path, maxBytes: 456)
        Self.record(capture, 7)
        capture.close()
        #expect(try Self.payloads(path + ".1") == [4, 5, 6])
        #expect(try Self.payloads(path) == [7])
        #expect(readFileBytes(path + ".1")?.count == 456)
        #expect(capture.droppedRecords == 0)
    }

    @Test func boundOneByteSmallerRotatesOneRecordSooner() throws {
        let path = Self.path("rotate-455")
        let capture = try PcapCapture(path: path, maxBytes: 455)
        Self.record(capture, 3)
        capture.close()
        #expect(try Self.payloads(path + ".1") == [1, 2])
        #expect(try Self.payloads(path) == [3])
    }

    static let refused: [(name: String, bytes: [UInt8], reason: String)] = [
        ("text", Array("identity: 198.51.100.1\npolicy: []\n".utf8), "it is not a pcap file"),
        ("short", [0xd4, 0xc3, 0xb2], "it is not a pcap file"),
        ("pcapng", [0x0a, 0x0d, 0x0d, 0x0a] + [UInt8](repeating: 0, count: 28), "pcapng"),
        ("big-endian", [0xa1, 0xb2, 0xc3, 0xd4] + [UInt8](repeating: 0, count: 20), "big-endian"),
        ("nanoseconds", [0x4d, 0x3c, 0xb2, 0xa1] + [UInt8](repeating: 0, count: 20), "nanosecond"),
        ("ethernet", Array(Pcap.fileHeader[0..<20]) + [1, 0, 0, 0], "link type is 1"),
        ("damaged", Pcap.fileHeader + [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0], "damaged"),
    ]

    @Test(arguments: refused)
    func refusesAFileThatIsNotOurPcap(_ fixture: (name: String, bytes: [UInt8], reason: String)) throws {
        let path = Self.path("refuse-\(fixture.name)")
        Self.write(fixture.bytes, to: path)
        #expect {
            _ = try PcapCapture(path: path, maxBytes: 1 << 20)
        } throws: { error in
            guard let error = error as? CaptureError else { return false }
            return error.description.hasPrefix("refusing to append to \(path): ") && error.description.contains(fixture.reason)
        }
        #expect(readFileBytes(path) == fixture.bytes)
    }

    @Test func aDirectoryIsAClearError() {
        #expect {
            _ = try PcapCapture(path: "/tmp", maxBytes: 1 << 20)
        } throws: { ($0 as? CaptureError)?.description.hasPrefix("cannot write the capture file /tmp: ") == true }
    }

    /// A full queue drops and counts the record at once; the writer later writes what it holds.
    @Test func fullQueueDropsAndCounts() throws {
        let path = Self.path("queue")
        let writer = try CaptureWriter(path: path, maxBytes: 1 << 20, queueLimit: 2)
        let datagram = Pcap.Datagram(source: IPAddress("198.51.100.1")!, sourcePort: 500,
                                     destination: IPAddress("198.51.100.2")!, destinationPort: 500, payload: [9])
        for _ in 0..<5 { writer.enqueue(Pcap.record(datagram)) }
        #expect(writer.dropped.load(ordering: .relaxed) == 3)
        writer.stop()
        writer.run()
        #expect(try Self.payloads(path) == [9, 9])
    }

    @Test func maxBytesIsAConfigurationKey() throws {
        let base = "identity: 198.51.100.1\npolicy: [permit ip any any]\ncapture: /var/tmp/ted.pcap\n"
        #expect(try ConfigurationLoader.parse(base, path: "c.yaml").captureMaxBytes == 64 << 20)
        #expect(try ConfigurationLoader.parse(base + "capture-max-bytes: 512K\n", path: "c.yaml").captureMaxBytes == 512 << 10)
        #expect(try ConfigurationLoader.parse(base + "capture-max-bytes: 4096\n", path: "c.yaml").captureMaxBytes == 4096)
        #expect(throws: ConfigError.self) { try ConfigurationLoader.parse(base + "capture-max-bytes: 4095\n", path: "c.yaml") }
        #expect {
            try ConfigurationLoader.parse(base + "capture-max-bytes: lots\n", path: "c.yaml")
        } throws: { ($0 as? ConfigError)?.description.hasPrefix("c.yaml:4:20: error: 'capture-max-bytes' must be a size") == true }
    }
}
