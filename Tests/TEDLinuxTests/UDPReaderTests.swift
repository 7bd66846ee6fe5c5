import Synchronization
import Testing
import TEDModel
@testable import TEDLinux

#if canImport(Glibc)
import Glibc
#endif

/// The TED socket's reader thread on real loopback sockets.
@Suite struct UDPReaderTests {
    struct Received: Equatable {
        let bytes: [UInt8]
        let source: String
        let port: UInt16
    }

    /// A reader on `fd` that collects what it reads and how it ended.
    final class Collector: Sendable {
        private let state = Mutex<(datagrams: [Received], ended: Int32??)>(([], nil))
        private(set) nonisolated(unsafe) var reader: UDPReader!

        init(fd: Int32) {
            reader = UDPReader(fd: fd, slots: 4, onBatch: { [self] batch in
                for index in 0..<batch.count {
                    let (bytes, source, port) = batch.datagram(index)
                    let datagram = Received(bytes: Array(bytes), source: source?.description ?? "none", port: port)
                    state.withLock { $0.datagrams.append(datagram) }
                }
            }, onError: { _ in }, onEnd: { [self] code in state.withLock { $0.ended = .some(code) } })
        }

        var datagrams: [Received] { state.withLock { $0.datagrams } }
        /// nil while reading; then nil inside when stopped, or the errno that ended it.
        var ended: Int32?? { state.withLock { $0.ended } }

        /// Waits (at most 5 s) until `count` datagrams have been read.
        func waitFor(_ count: Int) -> [Received] {
            for _ in 0..<500 where datagrams.count < count { usleep(10_000) }
            return datagrams
        }
    }

    /// A client socket bound to `address` (port chosen by the kernel).
    static func client(_ address: String) throws -> (fd: Int32, port: UInt16) {
        let ip = try #require(IPAddress(address))
        let fd = try UDPSocket.bind(ip, port: 0)
        return (fd, try UDPSocket.localPort(of: fd))
    }

    static func send(_ bytes: [UInt8], from fd: Int32, to address: String, port: UInt16) throws {
        var batch = UDPSocket.SendBatch()
        bytes.withUnsafeBytes { batch.append($0, to: IPAddress(address)!, port: port) }
        var failure: Int32?
        batch.send(on: fd, socketFamily: IPAddress(address)!.family) { _, code in failure = code }
        #expect(failure == nil)
    }

    @Test func readsEachDatagramWithItsSource() throws {
        let fd = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0, receiveTimeout: 10_000)
        defer { close(fd) }
        let collector = Collector(fd: fd)
        let (client, clientPort) = try Self.client("127.0.0.1")
        defer { close(client) }
        let sent: [[UInt8]] = [[1], [], Array(repeating: 7, count: 1500), [1, 2, 3, 4, 5, 6]]
        for bytes in sent { try Self.send(bytes, from: client, to: "127.0.0.1", port: try UDPSocket.localPort(of: fd)) }
        let received = collector.waitFor(sent.count)
        collector.reader.stop()
        #expect(received == sent.map { Received(bytes: $0, source: "127.0.0.1", port: clientPort) })
        #expect(collector.ended == .some(nil), "stopped, not lost")
    }

    /// On a socket bound to [::], an IPv4 peer arrives IPv4-mapped and is reported as IPv4.
    @Test func dualStackSocketNamesIPv4PeersAsIPv4() throws {
        let fd = try UDPSocket.bind(IPAddress("::")!, port: 0, receiveTimeout: 10_000)
        defer { close(fd) }
        let collector = Collector(fd: fd)
        let port = try UDPSocket.localPort(of: fd)
        let (v4, v4Port) = try Self.client("127.0.0.1")
        let (v6, v6Port) = try Self.client("::1")
        defer { close(v4); close(v6) }
        try Self.send([4], from: v4, to: "127.0.0.1", port: port)
        _ = collector.waitFor(1)
        try Self.send([6], from: v6, to: "::1", port: port)
        let received = collector.waitFor(2)
        collector.reader.stop()
        #expect(received == [Received(bytes: [4], source: "127.0.0.1", port: v4Port),
                             Received(bytes: [6], source: "::1", port: v6Port)])
    }

    /// A datagram longer than a slot arrives cut to the slot: longer than any TED message,
    /// so the decoder still rejects it as too long.
    @Test func aLongDatagramArrivesCutToTheSlot() throws {
        let fd = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0, receiveTimeout: 10_000)
        defer { close(fd) }
        let collector = Collector(fd: fd)
        let (client, _) = try Self.client("127.0.0.1")
        defer { close(client) }
        try Self.send(Array(repeating: 9, count: UDPSocket.ReceiveBatch.slotSize + 1000), from: client, to: "127.0.0.1",
                      port: try UDPSocket.localPort(of: fd))
        let received = collector.waitFor(1)
        collector.reader.stop()
        #expect(received.map(\.bytes.count) == [UDPSocket.ReceiveBatch.slotSize])
        #expect(UDPSocket.ReceiveBatch.slotSize > 4096, "a cut datagram must still be too long for the decoder")
    }

    /// `stop` wakes a read blocked in the kernel: the thread has ended when it returns,
    /// long before the 30 s receive timeout.
    @Test func stopWakesABlockedRead() throws {
        let fd = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0, receiveTimeout: 30_000)
        defer { close(fd) }
        let collector = Collector(fd: fd)
        usleep(50_000)
        collector.reader.stop()
        #expect(collector.ended == .some(nil))
        #expect(collector.datagrams.isEmpty, "the wake-up is not a datagram")
    }

    /// A socket that can no longer be read ends the reader with the errno, so the daemon
    /// learns it lost its socket instead of spinning.
    @Test func anUnusableSocketEndsTheReaderWithItsError() throws {
        let fd = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0, receiveTimeout: 20)
        defer { close(fd) }
        let collector = Collector(fd: fd)
        let null = open("/dev/null", O_RDONLY)
        #expect(dup2(null, fd) == fd)
        close(null)
        for _ in 0..<500 where collector.ended == nil { usleep(10_000) }
        #expect(collector.ended == .some(ENOTSOCK))
        collector.reader.stop()
    }

    /// Datagrams the kernel drops for a full receive buffer are counted (SO_RXQ_OVFL): the
    /// one place an answer can die between the wire and ted that ted cannot see otherwise.
    /// The receive timeout (1 s) ends the reads once the queue is empty.
    @Test func theKernelsReceiveBufferDropsAreCounted() throws {
        let fd = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0, buffer: 4096, receiveTimeout: 1000)
        defer { close(fd) }
        let (client, _) = try Self.client("127.0.0.1")
        defer { close(client) }
        let port = try UDPSocket.localPort(of: fd)
        let batch = UDPSocket.ReceiveBatch(slots: 64)
        try Self.send([1], from: client, to: "127.0.0.1", port: port)
        #expect(batch.receive(on: fd) == .received(1) && batch.overflows == 0, "nothing dropped yet")
        for _ in 0..<200 { try Self.send(Array(repeating: 7, count: 1000), from: client, to: "127.0.0.1", port: port) }
        var read = 0
        while read < 200, case .received(let count) = batch.receive(on: fd) { read += count }
        #expect(read < 200)
        // The count rides on the datagrams queued after the drops: the next one brings it.
        try Self.send([2], from: client, to: "127.0.0.1", port: port)
        #expect(batch.receive(on: fd) == .received(1))
        #expect(Int(batch.overflows) == 200 - read, "every datagram sent is either read or counted as dropped")
    }
}
