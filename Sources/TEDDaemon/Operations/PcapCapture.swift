import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import TEDLinux
import TEDModel
import TEDWire

/// Appends every TED datagram the node sends or receives to a classic pcap file
/// (configuration keys `capture` and `capture-max-bytes`), for Wireshark with
/// `contrib/wireshark/ted.lua`.
///
/// An existing file is appended to when it is a pcap file of the kind ted writes
/// (little-endian, microseconds, raw IP); a partial last record, left by a crash, is cut
/// off first. Any other file is refused, so a wrong path never destroys a file. When the
/// next record would take the file past `maxBytes`, it is renamed `<file>.1` (replacing
/// the previous one) and a new file is started.
///
/// `record` frames the datagram on the caller's thread (the event loop) and queues it;
/// a dedicated thread writes. When `queueLimit` records are already waiting, the record
/// is dropped and counted: the event loop never waits for the disk.
final class PcapCapture: Sendable {
    private let writer: CaptureWriter
    private let thread: JoinableThread
    private let closed = Atomic<Bool>(false)

    init(path: String, maxBytes: Int, queueLimit: Int = 4096) throws(CaptureError) {
        writer = try CaptureWriter(path: path, maxBytes: maxBytes, queueLimit: queueLimit)
        let writer = self.writer
        thread = JoinableThread(name: "ted-capture") { writer.run() }
    }

    deinit { close() }

    /// Writes what is queued and ends the writer thread; later records are dropped.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        writer.stop()
        thread.join()
    }

    /// Records dropped because the queue was full or the file could not be written.
    var droppedRecords: Int { writer.dropped.load(ordering: .relaxed) }

    func record(_ payload: ByteBuffer, from source: IPAddress, port sourcePort: UInt16,
                to destination: IPAddress, port destinationPort: UInt16) {
        guard source.family == destination.family else { return }
        let now = LocalSystem.wallClock()
        writer.enqueue(Pcap.record(Pcap.Datagram(source: source, sourcePort: sourcePort, destination: destination,
                                                 destinationPort: destinationPort, payload: Array(payload.readableBytesView)),
                                   seconds: UInt32(truncatingIfNeeded: now.seconds),
                                   microseconds: UInt32(truncatingIfNeeded: now.nanoseconds / 1000)))
    }
}

/// Why a capture file cannot be used.
public struct CaptureError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// The file cannot be opened or written, with the reason.
        case cannotOpen(String)
        /// The file is not empty and does not start with a pcap header.
        case notPcap
        /// A pcap file ted cannot append to without mixing formats (pcapng, big-endian,
        /// nanoseconds, another link type), or whose records are damaged.
        case incompatible(String)
    }

    public let path: String
    public let reason: Reason

    public var description: String {
        switch reason {
        case .cannotOpen(let why): "cannot write the capture file \(path): \(why)"
        case .notPcap: "refusing to append to \(path): it is not a pcap file (choose another 'capture' path)"
        case .incompatible(let why): "refusing to append to \(path): \(why) (choose another 'capture' path)"
        }
    }
}

/// The file and the queue in front of it; the file is touched only by the writer thread
/// once `init` has returned.
final class CaptureWriter: @unchecked Sendable {
    let path: String
    let maxBytes: Int
    let queueLimit: Int
    let dropped = Atomic<Int>(0)

    /// true when records wait or the writer must stop; guards `queue` and `stopping`.
    private let condition = ConditionLock(value: false)
    private var queue: [[UInt8]] = []
    private var stopping = false
    /// nil after a rotation failed; the next record tries again.
    private var file: AppendFile?

    static let headerSize = 24
    static let recordHeaderSize = 16

    init(path: String, maxBytes: Int, queueLimit: Int) throws(CaptureError) {
        self.path = path
        self.maxBytes = maxBytes
        self.queueLimit = queueLimit
        file = try Self.open(path)
    }

    func enqueue(_ record: [UInt8]) {
        condition.lock()
        guard queue.count < queueLimit, !stopping else {
            condition.unlock()
            dropped.add(1, ordering: .relaxed)
            return
        }
        queue.append(record)
        condition.unlock(withValue: true)
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.unlock(withValue: true)
    }

    /// The writer thread's loop: takes every waiting record at once, writes them, and
    /// returns once stopped with nothing left.
    func run() {
        while true {
            condition.lock(whenValue: true)
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let stop = stopping
            condition.unlock(withValue: stop)
            for record in batch { write(record) }
            if stop { return }
        }
    }

    private func write(_ record: [UInt8]) {
        if file.map({ $0.size + record.count > maxBytes && $0.size > Self.headerSize }) ?? true { rotate() }
        guard let file, (try? file.append(record)) != nil else {
            dropped.add(1, ordering: .relaxed)
            return
        }
    }

    /// `<file>` becomes `<file>.1`, and a new `<file>` starts with its header. When that
    /// fails, records are dropped and the next one tries again.
    private func rotate() {
        file = nil
        guard AppendFile.rename(path, to: path + ".1") else { return }
        file = try? Self.open(path)
    }

    /// Opens `path` for appending: a new or empty file gets the header; an existing one
    /// must be a pcap file ted can append to, and loses a partial last record.
    static func open(_ path: String) throws(CaptureError) -> AppendFile {
        let file: AppendFile
        do {
            file = try AppendFile(path: path, mode: 0o640)
        } catch {
            throw CaptureError(path: path, reason: .cannotOpen(error.reason))
        }
        guard file.isRegularFile else { throw CaptureError(path: path, reason: .cannotOpen("not a regular file")) }
        if file.size == 0 {
            do {
                try file.append(Pcap.fileHeader)
            } catch {
                throw CaptureError(path: path, reason: .cannotOpen(error.reason))
            }
            return file
        }
        let end = try validEnd(file)
        if end < file.size { _ = file.truncate(to: end) }
        return file
    }

    /// Where the last whole record ends, after checking the header is one ted writes.
    private static func validEnd(_ file: AppendFile) throws(CaptureError) -> Int {
        let path = file.path
        let header = file.read(at: 0, count: headerSize)
        guard header.count == headerSize else { throw CaptureError(path: path, reason: .notPcap) }
        switch Array(header[0..<4]) {
        case [0xd4, 0xc3, 0xb2, 0xa1]: break
        case [0xa1, 0xb2, 0xc3, 0xd4]:
            throw CaptureError(path: path, reason: .incompatible("it is a big-endian pcap file; ted writes little-endian"))
        case [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]:
            throw CaptureError(path: path, reason: .incompatible("it has nanosecond timestamps; ted writes microseconds"))
        case [0x0a, 0x0d, 0x0d, 0x0a]:
            throw CaptureError(path: path, reason: .incompatible("it is a pcapng file; ted writes classic pcap"))
        default:
            throw CaptureError(path: path, reason: .notPcap)
        }
        let linkType = le32(header, 20)
        guard linkType == Pcap.linkTypeRaw else {
            throw CaptureError(path: path, reason: .incompatible("its link type is \(linkType); ted writes raw IP (101)"))
        }
        var offset = headerSize
        while offset + recordHeaderSize <= file.size {
            let recordHeader = file.read(at: offset, count: recordHeaderSize)
            guard recordHeader.count == recordHeaderSize else { break }
            let length = Int(le32(recordHeader, 8))
            guard length <= 65_535 else {
                throw CaptureError(path: path, reason: .incompatible("its record at byte \(offset) is damaged"))
            }
            guard offset + recordHeaderSize + length <= file.size else { break }
            offset += recordHeaderSize + length
        }
        return offset
    }

    private static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }
}
