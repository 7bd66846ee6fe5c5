import Synchronization
import TEDBenchSupport

#if canImport(Glibc)
import Glibc
#endif

/// A blocking-socket UDP load generator on loopback: one sender thread, one receiver thread.
///
/// Each datagram carries its sequence number in bytes 0..<8 (the ISAKMP initiator cookie),
/// which a TED responder copies into its answer and an echo server echoes back, so every
/// reply is matched to its send time.
final class UDPLoadGenerator: @unchecked Sendable {
    struct Result {
        var sent = 0
        var received = 0
        var seconds = 0.0
        var latenciesMicros: [Double] = []

        var receivedPerSecond: Double { Double(received) / seconds }

        func percentile(_ p: Double) -> Double {
            guard !latenciesMicros.isEmpty else { return .nan }
            let sorted = latenciesMicros.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }

    let fd: Int32
    let port: UInt16

    /// Opens a socket bound to 127.0.0.1 on an ephemeral port.
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        var size: Int32 = 8 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw BenchError("bind: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    /// Sends `datagrams` round-robin to 127.0.0.1:`port` for `seconds`.
    ///
    /// With `rate` nil: as fast as possible while at most `window` are unanswered
    /// (throughput). With a rate: paced open loop, and every reply's latency is kept.
    func run(datagrams: [[UInt8]], to port: UInt16, seconds: Double, rate: Double? = nil,
             window: Int = 256) -> Result {
        let sent = Atomic<Int>(0), received = Atomic<Int>(0), stop = Atomic<Bool>(false)
        let capacity = rate.map { Int($0 * seconds * 1.1) + 1024 } ?? 0
        let sendTimes = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(capacity, 1))
        let latencies = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(capacity, 1))
        defer { sendTimes.deallocate(); latencies.deallocate() }
        let latencyCount = Atomic<Int>(0)
        let fd = self.fd

        let receiver = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stop.load(ordering: .relaxed) {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n >= 8 else { continue }
                let now = monotonicNanos()
                received.add(1, ordering: .relaxed)
                if rate != nil {
                    let sequence = buffer.prefix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
                    let index = Int(sequence) - 1
                    if index >= 0, index < capacity {
                        let slot = latencyCount.add(1, ordering: .relaxed).oldValue
                        if slot < capacity { latencies[slot] = Double(now - sendTimes[index]) / 1000 }
                    }
                }
            }
        }
        var destination = Self.loopback(port: port)
        let start = monotonicNanos()
        let end = start + UInt64(seconds * 1e9)
        var sequence = 0
        var packet = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = monotonicNanos()
            if now >= end { break }
            if let rate {
                let due = start + UInt64(Double(sequence) / rate * 1e9)
                if now < due {
                    // Sleep rather than spin, so the sender leaves the CPU to the server.
                    var pause = timespec(tv_sec: 0, tv_nsec: Int(due - now))
                    nanosleep(&pause, nil)
                    continue
                }
                if sequence >= capacity { break }
            } else if sent.load(ordering: .relaxed) - received.load(ordering: .relaxed) >= window {
                sched_yield()
                continue
            }
            let template = datagrams[sequence % datagrams.count]
            let count = template.count
            packet.withUnsafeMutableBufferPointer { out in
                for i in 0..<count { out[i] = template[i] }
                var cookie = UInt64(sequence + 1)
                for i in (0..<8).reversed() { out[i] = UInt8(cookie & 0xff); cookie >>= 8 }
            }
            if rate != nil { sendTimes[sequence] = monotonicNanos() }
            let written = withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, packet, count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if written == count { sent.add(1, ordering: .relaxed) }
            sequence += 1
        }
        let elapsed = Double(monotonicNanos() - start) / 1e9
        usleep(200_000)
        stop.store(true, ordering: .relaxed)
        receiver.join()
        var result = Result(sent: sent.load(ordering: .relaxed), received: received.load(ordering: .relaxed), seconds: elapsed)
        if rate != nil { result.latenciesMicros = Array(latencies.prefix(min(latencyCount.load(ordering: .relaxed), capacity))) }
        return result
    }
}

/// A joinable POSIX thread running a closure.
final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, context)
    }

    func join() { pthread_join(handle, nil) }
}
