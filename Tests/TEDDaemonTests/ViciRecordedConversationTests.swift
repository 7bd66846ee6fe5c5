import Foundation
import Logging
import Synchronization
import Testing
@testable import TEDVici
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The VICI client against charon's own bytes: replies recorded from strongSwan 5.9.8
/// (charon in a namespace, 2026-11-25), replayed by a fake server on a UNIX socket.
@Suite(.serialized) struct ViciRecordedConversationTests {
    /// Recorded replies, by the request that drew them.
    static let recorded: [String: String] = [
        "get-conns": "00000009010405636f6e6e7306",  // CMD_RESPONSE { conns = [] }
        "no-such-command": "0000000102",  // CMD_UNKNOWN
        "unload-conn": "000000420103077375636365737300026e6f03066572726d7367002a756e6c6f61643a20636f6e6e656374696f6e20277465642d6d697373696e6727206e6f7420666f756e64",
        "register child-updown": "0000000105",  // EVENT_CONFIRM
        "register ike-updown": "0000000105",
        "register child-rekey": "0000000105",
        "register no-such-event": "0000000106",  // EVENT_UNKNOWN
        "register list-sa": "0000000105",
        "list-sas": "0000000101",  // CMD_RESPONSE {} after no list-sa event
        "unregister list-sa": "0000000105",
    ]

    /// A fake charon: answers each request with its recorded reply, after `delay` for the
    /// names listed there (once each), and pushes `events` after a registration.
    final class FakeCharon: @unchecked Sendable {
        let path = "/tmp/ted-fake-vici-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let accepted = Atomic<Int>(0)
        private let listener: Int32
        private let delays: Mutex<[String: Double]>
        private let events: [[UInt8]]

        init(delays: [String: Double] = [:], events: [[UInt8]] = []) throws {
            self.delays = Mutex(delays)
            self.events = events
            listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0, listen(listener, 8) == 0 else { throw CocoaError(.fileWriteUnknown) }
            let thread = Thread { [self] in acceptLoop() }
            thread.start()
        }

        deinit {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            unlink(path)
        }

        private func acceptLoop() {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                accepted.add(1, ordering: .relaxed)
                Thread { [self] in serve(connection) }.start()
            }
        }

        private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
            var bytes = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let n = bytes[done...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return nil }
                done += n
            }
            return bytes
        }

        private func serve(_ fd: Int32) {
            defer { close(fd) }
            while let header = readExactly(fd, 4) {
                let length = header.reduce(0) { $0 << 8 | Int($1) }
                guard let body = readExactly(fd, length), let type = body.first, body.count >= 2 else { return }
                let name = String(decoding: body[2..<min(body.count, 2 + Int(body[1]))], as: UTF8.self)
                let key = switch type {
                case 3: "register \(name)"
                case 4: "unregister \(name)"
                default: name
                }
                let delay = delays.withLock { $0.removeValue(forKey: key) } ?? 0
                if delay > 0 { usleep(UInt32(delay * 1_000_000)) }
                let reply = hexBytes(ViciRecordedConversationTests.recorded[key] ?? "0000000102")
                _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if key == "register child-updown" {
                    for event in events { _ = event.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
                }
            }
        }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        stride(from: 0, to: hex.count, by: 2).map {
            let start = hex.index(hex.startIndex, offsetBy: $0)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
        }
    }

    @Test func theClientReadsCharonsRepliesAsCharonMeansThem() async throws {
        let charon = try FakeCharon()
        let client = try ViciClient(socketPath: charon.path)
        #expect(try await client.request("get-conns").list("conns") == [])
        await #expect(throws: ViciClient.Failure("charon does not know the VICI command no-such-command")) {
            try await client.request("no-such-command")
        }
        var unload = ViciMessage()
        unload.add("name", "ted-missing")
        let refused = try await client.request("unload-conn", unload)
        #expect(throws: ViciClient.Failure("unload-conn failed: unload: connection 'ted-missing' not found")) {
            try refused.requireSuccess("unload-conn")
        }
        #expect(try await client.stream("list-sas", event: "list-sa").isEmpty)
    }

    @Test func eventsArriveAfterTheConfirmation() async throws {
        var child = ViciMessage()
        child.add("local-ts", list: ["198.18.1.0/24"])
        child.add("remote-ts", list: ["198.18.2.0/24[tcp/https]"])
        child.add("name", "ted-x")
        var children = ViciMessage()
        children.add("ted-x-7", section: child)
        var sa = ViciMessage()
        sa.add("remote-host", "198.51.100.2")
        sa.add("child-sas", section: children)
        var message = ViciMessage()
        message.add("up", "yes")
        message.add("ted-x", section: sa)
        var body = ByteBuffer()
        body.writeInteger(UInt8(7))
        body.writeInteger(UInt8("child-updown".utf8.count))
        body.writeString("child-updown")
        try message.encode(into: &body)
        let event = Array(withUnsafeBytes(of: UInt32(body.readableBytes).bigEndian) { Array($0) }) + Array(body.readableBytesView)
        let charon = try FakeCharon(events: [event])
        let controller = ViciController(socketPath: charon.path, logger: quietLogger)
        var iterator = try await controller.events().makeAsyncIterator()
        let first = await iterator.next()
        #expect(first == IKEEvent(kind: .childUp, connection: "ted-x", remoteAddress: "198.51.100.2", child: "ted-x-7",
                                  childConfig: "ted-x", localTS: ["198.18.1.0/24"], remoteTS: ["198.18.2.0/24[tcp/https]"]))
        await controller.close()
    }

    /// A reply that comes after its command timed out is never read as the answer to the
    /// next command: the timeout drops the connection and the next command opens a new one.
    @Test func aLateReplyNeverAnswersAnotherCommand() async throws {
        let charon = try FakeCharon(delays: ["unload-conn": 2.5])
        let controller = ViciController(socketPath: charon.path, logger: quietLogger,
                                        commandTimeout: 1)
        await #expect(throws: (any Error).self) { try await controller.unloadConnection("ted-missing") }
        // Had the connection been kept, this would read the late `unload-conn` reply.
        #expect(try await controller.connectionNames() == [])
        #expect(charon.accepted.load(ordering: .relaxed) == 2)
        await controller.close()
    }
}

import NIOCore
