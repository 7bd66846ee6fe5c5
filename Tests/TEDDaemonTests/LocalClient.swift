#if canImport(Glibc)
import Glibc
#endif

/// A client of a local server (127.0.0.1 or a UNIX socket) for tests: plain sockets, read
/// without blocking a thread, closed when released.
final class LocalClient {
    struct Failure: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(call): \(String(cString: strerror(code)))" }
    }

    /// What a bounded read saw.
    struct Read {
        var bytes: [UInt8] = []
        /// The peer closed (end of file or reset).
        var closed = false
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    static func tcp(port: Int) throws -> LocalClient {
        let client = LocalClient(fd: socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0))
        guard client.fd >= 0 else { throw Failure(call: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(call: "connect", code: errno) }
        return client
    }

    static func unix(path: String) throws -> LocalClient {
        let client = LocalClient(fd: socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0))
        guard client.fd >= 0 else { throw Failure(call: "socket", code: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(call: "path", code: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw Failure(call: "connect", code: errno) }
        return client
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw Failure(call: "send", code: errno) }
    }

    /// Reads until `enough` holds for the bytes so far, the peer closes, or `within` passes.
    func read(within: Duration, until enough: ([UInt8]) -> Bool = { _ in false }) async -> Read {
        var read = Read()
        let deadline = ContinuousClock.now + within
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !enough(read.bytes) {
            let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                read.bytes += chunk[0..<count]
            } else if count == 0 || errno == ECONNRESET {
                read.closed = true
                break
            } else if ContinuousClock.now >= deadline {
                break
            } else {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        return read
    }

    /// Closed by the peer (end of file or reset), seen without waiting.
    var isClosed: Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    /// Open and with nothing to read now: neither closed nor answered.
    var isOpenAndQuiet: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }
}

/// Polls `condition` every few milliseconds until it holds or `within` passes.
func eventually(within: Duration = .seconds(2), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + within
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}

extension Sequence<LocalClient> {
    var allClosed: Bool { allSatisfy { $0.isClosed } }
    var allOpenAndQuiet: Bool { allSatisfy { $0.isOpenAndQuiet } }
}
