import Foundation
import Synchronization
import Testing
import TEDModel
import TEDTestSupport
@testable import TEDLinux

#if canImport(Glibc)
import Glibc
#endif

/// Held first packets against the real kernel, in a namespace: a forwarded packet that a
/// permit entry covers waits in ted's netfilter queue (not forwarded), goes on when
/// accepted and never when dropped; a tunnel's selector in the table's set lets its
/// packets by; and with no reader the queue drops (fail closed).
@Suite(.serialized, .enabled(if: RootTests.runnable, "needs root: network namespaces")) struct HoldNamespaceTests {
    static let setup = DataplaneNamespaceTests.setup + [
        ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.peer.rp_filter=0"],
        // Forwarded packets leave through `inside` to a MAC nobody has: counted once, never looped.
        ["ip", "neigh", "add", "198.18.2.20", "lladdr", "02:00:00:00:00:99", "dev", "inside"],
    ]

    final class Received: Sendable {
        let packets = Mutex<[PacketQueue.Queued]>([])
        func wait(for count: Int) -> [PacketQueue.Queued] {
            for _ in 0..<200 {
                let now = packets.withLock { $0 }
                if now.count >= count { return now }
                usleep(10_000)
            }
            return packets.withLock { $0 }
        }
    }

    /// Sends UDP datagrams to 198.18.2.20:9 from 198.18.1.10 into `peer` (so they arrive
    /// from outside and are forwarded), each from its own source port.
    static func send(ports: [Int]) {
        let frames = ports.map { "Ether(dst=get_if_hwaddr('peer'))/IP(src='198.18.1.10',dst='198.18.2.20')/UDP(sport=\($0),dport=9)/b'held'" }
        let result = NamespaceHarness.run(["/usr/bin/python3", "-c", "from scapy.all import Ether, IP, UDP, sendp, get_if_hwaddr; "
                                           + "sendp([\(frames.joined(separator: ","))], iface='inside', verbose=False)"])
        if result.status != 0 { Issue.record("scapy: \(result.output.suffix(300))") }
    }

    static func forwarded() -> Int {
        let listing = NamespaceHarness.here(["nft", "list", "table", "inet", "count"])
        guard let range = listing.range(of: "packets ") else { return -1 }
        return Int(listing[range.upperBound...].prefix { $0.isNumber }) ?? -1
    }

    @Test func heldPacketsWaitAndGoOnOnlyWhenAccepted() throws {
        guard NamespaceHarness.available() else { return }
        let result = try NamespaceHarness.inNamespace(setup: Self.setup) { () throws -> [String: String] in
            let counter = "table inet count {\n chain post {\n  type filter hook postrouting priority 0; policy accept;\n  oifname \"inside\" udp dport 9 counter\n }\n}\n"
            let added = NamespaceHarness.runWithInput(["nft", "-f", "-"], input: counter)
            guard added.status == 0 else { throw HarnessError("nft: \(added.output)") }
            let table = HoldTable(policy: try Policy(lines: ["deny udp 198.18.1.0/24 eq 7000 any", "permit udp 198.18.1.0/24 198.18.2.0/24"]),
                                  probePort: 500, tunnelDevice: nil, queue: 77)
            try table.install()
            let received = Received()
            let queue = try PacketQueue(number: 77, maxLength: 16)
            queue.start(onPackets: { batch in received.packets.withLock { $0 += batch } }, onTick: {})
            var facts: [String: String] = [:]
            // Three packets of the entry and one the deny above it lets go.
            Self.send(ports: [4001, 4002, 4003, 7000])
            let held = received.wait(for: 3)
            usleep(100_000)
            facts["held"] = "\(held.count)"
            facts["forwarded while held"] = "\(Self.forwarded())"
            facts["first"] = held.first.flatMap { Packet(ipHeader: $0.header) }.map { "\($0)" } ?? "none"
            facts["marked"] = "\(held.allSatisfy { $0.mark & HoldTable.mark != 0 })"
            if held.count >= 3 {
                queue.accept(held[0].id, mark: held[0].mark & ~HoldTable.mark)
                queue.drop(held[1].id)
            }
            usleep(200_000)
            facts["forwarded after one accept, one drop"] = "\(Self.forwarded())"
            // A tunnel's selector in the set: its packets go by without the queue.
            let tunnel = TrafficSelector(proto: .udp, local: AddressPattern("198.18.1.0/24")!,
                                         remote: AddressPattern("198.18.2.0/24")!, remotePorts: PortRange(9, 9)!)
            try HoldTable.update(adding: [tunnel], removing: [])
            Self.send(ports: [4004])
            usleep(300_000)
            facts["queued in all"] = "\(received.packets.withLock { $0.count })"
            facts["forwarded with the tunnel in the set"] = "\(Self.forwarded())"
            try HoldTable.update(adding: [], removing: [tunnel])
            // No reader: the kernel drops what was held and what comes.
            queue.stop()
            Self.send(ports: [4005])
            usleep(300_000)
            facts["forwarded with no reader"] = "\(Self.forwarded())"
            HoldTable.remove()
            facts["left"] = NamespaceHarness.here(["nft", "list", "tables"]).contains(HoldTable.tableName) ? "table"
                : NamespaceHarness.here(["iptables", "-t", "mangle", "-S"]).contains("ted-hold") ? "queue rule" : "nothing"
            return facts
        }
        #expect(result["held"] == "3")
        #expect(result["forwarded while held"] == "1", "only the denied packet (sport 7000) went on")
        #expect(result["first"]?.hasPrefix("udp 198.18.1.10:400") == true && result["first"]?.hasSuffix("198.18.2.20:9") == true)
        #expect(result["marked"] == "true")
        #expect(result["forwarded after one accept, one drop"] == "2")
        #expect(result["queued in all"] == "3")
        #expect(result["forwarded with the tunnel in the set"] == "3")
        #expect(result["forwarded with no reader"] == "3", "the third held packet and the new one are dropped")
        #expect(result["left"] == "nothing")
    }
}
