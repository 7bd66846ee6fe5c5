import Dispatch
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A client of charon's VICI socket (strongSwan's vici README): one blocking UNIX-socket
/// connection, used from a private serial queue so callers never block a Swift
/// concurrency thread.
public final class ViciClient: @unchecked Sendable {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    private let fd: Int32
    private let queue = DispatchQueue(label: "ted.vici")
    /// Largest packet accepted from charon.
    static let maxPacket = 1 << 24

    /// Connects to `socketPath` (e.g. /var/run/charon.vici).
    public init(socketPath: String, timeoutSeconds: Int = 30) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        // Every stored property is set from here on, so a throw runs deinit, which closes
        // the socket: closing it here too would close whatever descriptor another thread
        // opened under the same number meanwhile.
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure("VICI socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let text = String(cString: strerror(errno))
            throw Failure("cannot connect to VICI at \(socketPath): \(text)")
        }
        setTimeout(seconds: timeoutSeconds)
    }

    deinit { if fd >= 0 { close(fd) } }

    private func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends a command and returns its response message.
    public func request(_ command: String, _ message: ViciMessage = ViciMessage(), timeoutSeconds: Int = 30) async throws -> ViciMessage {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.requestSync(command, message, timeoutSeconds: timeoutSeconds) })
            }
        }
    }

    private func requestSync(_ command: String, _ message: ViciMessage, timeoutSeconds: Int) throws -> ViciMessage {
        setTimeout(seconds: timeoutSeconds)
        try send(type: .cmdRequest, name: command, message: message)
        // Events can only arrive on a connection that registered for them; skip any anyway.
        for _ in 0..<100_000 {
            let (type, body) = try receive()
            switch type {
            case .cmdResponse: return body
            case .cmdUnknown: throw Failure("charon does not know the VICI command \(command)")
            case .event: continue
            default: throw Failure("unexpected VICI packet type \(type) for \(command)")
            }
        }
        throw Failure("no response to \(command)")
    }

    /// A streaming command (`list-sas`, `list-conns`): registers for `event`, sends the
    /// command, collects the events it streams until its response, then unregisters.
    public func stream(_ command: String, _ message: ViciMessage = ViciMessage(), event: String,
                       timeoutSeconds: Int = 10) async throws -> [ViciMessage] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    self.setTimeout(seconds: timeoutSeconds)
                    try self.send(type: .eventRegister, name: event, message: nil)
                    guard try self.receive().0 == .eventConfirm else { throw Failure("charon refused event \(event)") }
                    try self.send(type: .cmdRequest, name: command, message: message)
                    var events: [ViciMessage] = []
                    for _ in 0..<100_000 {
                        let (type, body, name) = try self.receiveNamed()
                        switch type {
                        case .event where name == event: events.append(body)
                        case .event: continue
                        case .cmdResponse:
                            try self.send(type: .eventUnregister, name: event, message: nil)
                            _ = try self.receive()
                            return events
                        case .cmdUnknown: throw Failure("charon does not know the VICI command \(command)")
                        default: throw Failure("unexpected VICI packet type \(type) for \(command)")
                        }
                    }
                    throw Failure("no end to \(command)")
                })
            }
        }
    }

    /// Registers for events and delivers them until the connection closes; runs on its own thread.
    public func subscribe(_ events: [String]) -> AsyncStream<(String, ViciMessage)> {
        AsyncStream { continuation in
            queue.async {
                do {
                    self.setTimeout(seconds: 10)
                    for event in events {
                        try self.send(type: .eventRegister, name: event, message: nil)
                        // Events already registered may come before this confirmation.
                        while true {
                            let (type, body, name) = try self.receiveNamed()
                            if type == .event { continuation.yield((name, body)); continue }
                            guard type == .eventConfirm else { throw Failure("charon refused event \(event)") }
                            break
                        }
                    }
                    self.setTimeout(seconds: 0)
                    while true {
                        let (type, body, name) = try self.receiveNamed()
                        if type == .event { continuation.yield((name, body)) }
                    }
                } catch {
                    continuation.finish()
                }
            }
        }
    }

    /// Shuts the connection down (a subscription's reader then ends).
    public func shutdownConnection() { shutdown(fd, Int32(SHUT_RDWR)) }

    // MARK: Packets (vici README, "Packet layer"): 4-byte length, type, [name], message.

    private func send(type: ViciPacketType, name: String, message: ViciMessage?) throws {
        var body = ByteBuffer()
        body.writeInteger(type.rawValue)
        try body.writeViciName(name)
        try message?.encode(into: &body)
        var packet = ByteBuffer()
        packet.writeInteger(UInt32(body.readableBytes))
        packet.writeBuffer(&body)
        let bytes = Array(packet.readableBytesView)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure("VICI send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    private func receive() throws -> (ViciPacketType, ViciMessage) {
        let (type, body, _) = try receiveNamed()
        return (type, body)
    }

    private func receiveNamed() throws -> (ViciPacketType, ViciMessage, String) {
        let header = try readExactly(4)
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length >= 1, length <= Self.maxPacket else { throw ViciDecodeError(reason: .tooLarge) }
        var body = ByteBuffer(bytes: try readExactly(length))
        guard let code = body.readInteger(as: UInt8.self), let type = ViciPacketType(rawValue: code) else {
            throw ViciDecodeError(reason: .badPacketType)
        }
        var name = ""
        if type == .event || type == .eventRegister || type == .eventUnregister || type == .cmdRequest {
            name = try body.readViciName()
        }
        return (type, try ViciMessage.decode(&body), name)
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = bytes[received...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else {
                throw Failure(n == 0 ? "charon closed the VICI connection" : "VICI receive: \(String(cString: strerror(errno)))")
            }
            received += n
        }
        return bytes
    }
}

extension ViciMessage {
    /// Throws charon's `errmsg` when `success` is not `yes`.
    public func requireSuccess(_ command: String) throws {
        guard self["success"] == "yes" else {
            throw ViciClient.Failure("\(command) failed: \(self["errmsg"] ?? "no error message")")
        }
    }
}
