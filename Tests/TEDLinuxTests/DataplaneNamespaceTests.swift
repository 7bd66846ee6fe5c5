import Foundation
import Synchronization
import Testing
import TEDModel
import TEDTestSupport
@testable import TEDLinux

#if canImport(Glibc)
import Glibc
#endif

/// The Linux seams alone, each in a network namespace of its own: the XFRM policy table,
/// the ACQUIRE listener, the nftables interception and inbound guard, transparent probes.
@Suite(.serialized, .enabled(if: RootTests.runnable, "needs root: network namespaces")) struct DataplaneNamespaceTests {
    static let setup = [
        ["ip", "link", "set", "lo", "up"],
        // This kernel has no dummy device: a veth pair with both ends inside.
        ["ip", "link", "add", "inside", "type", "veth", "peer", "name", "peer"],
        ["ip", "addr", "add", "198.18.1.1/24", "dev", "inside"],
        ["ip", "link", "set", "inside", "up"],
        ["ip", "link", "set", "peer", "up"],
        ["ip", "route", "add", "198.18.2.0/24", "dev", "inside"],
        ["ip", "route", "add", "198.18.3.0/24", "dev", "inside"],
    ]

    @Test func aRestartedTableTakesThePoliciesOverInPlaceAndCleanupRemovesThem() throws {
        guard NamespaceHarness.available() else { return }
        let counts = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> [Int] in
            let lines = ["deny tcp 198.18.1.0/24 any eq 22", "permit ip 198.18.1.0/24 198.18.2.0/24",
                         "permit udp 198.18.1.0/24 198.18.3.0/24 eq 53"]
            let first = try XFRMTrapPlan.plan(try Policy(lines: lines), maxSelectorsPerEntry: 16)
            let table = try XFRMPolicyTable()
            try table.adopt(first)
            let installed = try table.bandSelectors().count
            // A foreign policy outside ted's band is never touched.
            _ = NamespaceHarness.here(["ip", "xfrm", "policy", "add", "src", "198.18.9.0/24", "dst", "198.18.8.0/24",
                                       "dir", "out", "priority", "100", "action", "allow"])
            // The next ted (a new table) adopts a policy without the third entry.
            let second = try XFRMTrapPlan.plan(try Policy(lines: Array(lines.prefix(2))), maxSelectorsPerEntry: 16)
            let removed = try XFRMPolicyTable().adopt(second)
            let kept = try table.bandSelectors().count
            let cleaned = try XFRMPolicyTable().removeStale()
            let left = try table.bandSelectors().count
            let foreign = NamespaceHarness.here(["ip", "xfrm", "policy"]).contains("198.18.9.0/24") ? 1 : 0
            return [installed, removed, kept, cleaned, left, foreign]
        }
        #expect(counts == [3, 1, 2, 2, 0, 1])
    }

    @Test func anAcquireNamesThePacketThatHitTheTrap() throws {
        guard NamespaceHarness.available() else { return }
        let seen = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> [Packet] in
            let table = try XFRMPolicyTable()
            try table.adopt(try XFRMTrapPlan.plan(try Policy(lines: ["permit udp 198.18.1.0/24 198.18.2.0/24"]),
                                                  maxSelectorsPerEntry: 16))
            let packets = Mutex<[Packet]>([])
            let listener = try AcquireListener { packet in packets.withLock { $0.append(packet) } }
            defer { listener.stop() }
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var local = sockaddr_in(), remote = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_port = UInt16(40000).bigEndian
            local.sin_addr.s_addr = inet_addr("198.18.1.1")
            remote.sin_family = sa_family_t(AF_INET)
            remote.sin_port = UInt16(53).bigEndian
            remote.sin_addr.s_addr = inet_addr("198.18.2.20")
            _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            for _ in 0..<100 where packets.withLock({ $0.isEmpty }) {
                _ = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                usleep(20_000)
            }
            return packets.withLock { $0 }
        }
        #expect(seen.first == (try Packet(parsing: "udp 198.18.1.1:40000 198.18.2.20:53")))
    }

    @Test func interceptionAndGuardTablesInstallAndGo() throws {
        guard NamespaceHarness.available() else { return }
        let views = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> [String] in
            let interception = NFTInterception(destinations: [AddressPattern("198.18.1.0/24")!, .host(IPAddress("198.51.100.1")!)],
                                               probePort: 500, listenPort: 1500)
            try interception.install()
            let table = NamespaceHarness.here(["nft", "list", "table", "inet", "ted"])
            let rules = NamespaceHarness.here(["ip", "rule"])
            try InboundGuard(policy: try Policy(lines: ["permit ip 198.18.1.0/24 198.18.0.0/15"]), probePort: 500, listenPort: 500,
                             tunnelDevice: "ipsec0").install()
            let guardTable = NamespaceHarness.here(["nft", "list", "table", "inet", "ted-guard"])
            interception.remove()
            InboundGuard.remove()
            return [table, rules, guardTable, NamespaceHarness.here(["nft", "list", "tables"]), NamespaceHarness.here(["ip", "rule"])]
        }
        #expect(views[0].contains("ip daddr 198.18.1.0/24") && views[0].contains("tproxy ip to :1500"))
        #expect(views[0].contains("meta mark != 0x000007ee"))
        #expect(views[1].contains("fwmark 0x7ed lookup 2029"))
        #expect(views[2].contains("iifname \"ipsec0\" accept") && views[2].contains("ip saddr 198.18.0.0/15 ip daddr 198.18.1.0/24"))
        #expect(!views[3].contains("inet ted"))
        #expect(!views[4].contains("fwmark 0x7ed"))
    }

    @Test func aTransparentProbeLeavesWithPsSourceAddressAndPort() throws {
        guard NamespaceHarness.available() else { return }
        let received = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> (String, UInt16, [UInt8]) in
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_port = UInt16(5000).bigEndian
            local.sin_addr.s_addr = inet_addr("198.18.1.1")
            _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            try TransparentProbe.send([1, 2, 3], from: IPAddress("198.18.1.10")!, port: 40000,
                                      to: IPAddress("198.18.1.1")!, port: 5000, ttl: 7, mark: 0x7ee, exactPort: true)
            var buffer = [UInt8](repeating: 0, count: 16)
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = withUnsafeMutablePointer(to: &from) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
            }
            let source = IPAddress(v4: UInt32(bigEndian: from.sin_addr.s_addr))
            return ("\(source)", UInt16(bigEndian: from.sin_port), Array(buffer.prefix(max(count, 0))))
        }
        #expect(received.0 == "198.18.1.10" && received.1 == 40000 && received.2 == [1, 2, 3])
    }

    /// The guard's outbound chain, the traps' second layer: with no XFRM trap at all (as
    /// after `ip xfrm policy flush`), a datagram a permit protects is dropped as it leaves
    /// and counted; one the policy does not protect, and this host's own IKE port, leave.
    @Test func theGuardDropsProtectedTrafficLeavingWithoutATransform() throws {
        guard NamespaceHarness.available() else { return }
        let counts = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> [String] in
            try InboundGuard(policy: try Policy(lines: ["permit udp 198.18.1.0/24 198.18.2.0/24"]), probePort: 500, listenPort: 500,
                             tunnelDevice: nil).install()
            defer { InboundGuard.remove() }
            func send(from port: UInt16, to destination: String) throws {
                let fd = try UDPSocket.bind(IPAddress("198.18.1.1")!, port: port)
                defer { close(fd) }
                var batch = UDPSocket.SendBatch()
                [UInt8](repeating: 1, count: 8).withUnsafeBytes { batch.append($0, to: IPAddress(destination)!, port: 9999) }
                batch.send(on: fd, socketFamily: .v4) { _, _ in }
            }
            let chain = { NamespaceHarness.here(["nft", "list", "chain", "inet", "ted-guard", "outbound"]) }
            try send(from: 0, to: "198.18.3.5")     // not protected
            try send(from: 500, to: "198.18.2.5")   // this host's IKE port
            let before = chain()
            for _ in 0..<3 { try send(from: 0, to: "198.18.2.5") }
            return [before, chain()]
        }
        func dropped(_ text: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.contains("comment \"entry 1\"") }),
                  let range = line.range(of: "counter packets ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(dropped(counts[0]) == 0, "\(counts[0])")
        #expect(dropped(counts[1]) == 3, "\(counts[1])")
    }

    /// The guard lets TED's own messages to the probe port by (probe, response and the
    /// challenge of issue 21) even where the policy covers their addresses, and drops any
    /// other ISAKMP exchange there: on the real kernel, over loopback.
    @Test func theGuardLetsEveryTEDExchangeByAndNothingElse() throws {
        guard NamespaceHarness.available() else { return }
        let arrived = try NamespaceHarness.inNamespace(setup: [["ip", "link", "set", "lo", "up"]]) { () throws -> [UInt8] in
            try InboundGuard(policy: try Policy(lines: ["permit udp 127.0.0.0/8 127.0.0.0/8"]), probePort: 500, listenPort: 500, tunnelDevice: nil).install()
            defer { InboundGuard.remove() }
            let server = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 500, receiveTimeout: 300)
            defer { close(server) }
            let client = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0)
            defer { close(client) }
            for exchange: UInt8 in [240, 241, 242, 243, 34] {
                var message = [UInt8](repeating: 0, count: 28)
                message[ISAKMP.exchangeTypeOffset] = exchange
                var batch = UDPSocket.SendBatch()
                message.withUnsafeBytes { batch.append($0, to: IPAddress("127.0.0.1")!, port: 500) }
                batch.send(on: client, socketFamily: .v4) { _, _ in }
            }
            let reads = UDPSocket.ReceiveBatch(slots: 8)
            var exchanges: [UInt8] = []
            while case .received(let count) = reads.receive(on: server) {
                for index in 0..<count { exchanges.append(reads.datagram(index).bytes[ISAKMP.exchangeTypeOffset]) }
            }
            return exchanges
        }
        #expect(arrived == ISAKMP.Exchange.allCases.map(\.rawValue))
    }

    /// Intercepted datagrams the kernel drops for a full receive buffer are counted too: a
    /// listener whose thread is held up while a burst arrives reads some, and every other
    /// one is counted.
    @Test func theInterceptionSocketsCountTheirOverflows() throws {
        guard NamespaceHarness.available() else { return }
        let (read, overflows) = try NamespaceHarness.inNamespace(setup: [["ip", "link", "set", "lo", "up"]]) { () throws -> (Int, Int) in
            let count = Mutex(0)
            let listener = try InterceptListener(port: 1501, families: [.v4]) { _ in
                if count.withLock({ $0 += 1; return $0 }) == 1 { usleep(500_000) }
            }
            defer { listener.stop() }
            let client = try UDPSocket.bind(IPAddress("127.0.0.1")!, port: 0)
            defer { close(client) }
            func send(_ datagrams: Int) {
                for _ in 0..<datagrams {
                    var batch = UDPSocket.SendBatch()
                    [UInt8](repeating: 1, count: 1000).withUnsafeBytes { batch.append($0, to: IPAddress("127.0.0.1")!, port: 1501) }
                    batch.send(on: client, socketFamily: .v4) { _, _ in }
                }
            }
            send(1)
            usleep(100_000)
            send(3000)
            usleep(1_000_000)
            send(1)   // brings the count the drops left
            for _ in 0..<100 where count.withLock({ $0 }) + listener.overflows < 3002 { usleep(20_000) }
            return (count.withLock { $0 }, listener.overflows)
        }
        #expect(overflows > 0)
        #expect(read + overflows == 3002)
    }
}
