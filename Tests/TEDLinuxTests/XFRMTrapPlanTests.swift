import Testing
import TEDModel
import TEDTestSupport
@testable import TEDLinux

/// The kernel's outbound policies as ted fills them: one policy per selector (an insert
/// replaces the policy with an equal selector, whatever either's priority), and a lookup
/// takes the matching policy with the lowest priority value.
struct KernelPolicyModel {
    private var policies: [PlannedXFRMPolicy.Selector: PlannedXFRMPolicy] = [:]

    init(installing plan: [PlannedXFRMPolicy]) {
        for policy in plan { policies[policy.selector] = policy }
    }

    func lookup(_ packet: Packet) -> PlannedXFRMPolicy? {
        policies.values.filter { Self.matches($0, packet) }.min { $0.priority < $1.priority }
    }

    /// The kernel's selector match: protocol 0 is any, ports (ICMP type and code) under their masks.
    private static func matches(_ policy: PlannedXFRMPolicy, _ packet: Packet) -> Bool {
        policy.family == packet.family && (policy.proto == 0 || policy.proto == packet.proto.number)
            && policy.source.contains(packet.source) && policy.destination.contains(packet.destination)
            && (packet.sourcePort ?? 0) & policy.sourcePortMask == policy.sourcePort
            && (packet.destinationPort ?? 0) & policy.destinationPortMask == policy.destinationPort
    }
}

@Suite struct XFRMTrapPlanTests {
    @Test func permitsTrapDeniesBypassInACLOrder() throws {
        let policy = try Policy(lines: ["deny tcp 198.18.1.0/24 any eq 22", "permit ip 198.18.1.0/24 198.18.0.0/15"])
        let plan = try XFRMTrapPlan.plan(policy, maxSelectorsPerEntry: 256)
        #expect(plan.count == 2)
        #expect(!plan[0].trap && plan[0].destinationPort == 22 && plan[0].destinationPortMask == 0xffff)
        #expect(plan[1].trap && plan[1].source.description == "198.18.1.0/24" && plan[1].destination.description == "198.18.0.0/15")
        #expect(plan[0].priority < plan[1].priority, "the earlier entry must win in XFRM")
        #expect(plan.allSatisfy { (XFRMTrapPlan.priorityBase...XFRMTrapPlan.priorityBandEnd).contains($0.priority) })
        #expect(plan[0].reqid != plan[1].reqid, "one reqid per entry keeps larval states apart")
    }

    /// The review's second leak: ping6 carries next header 58, so a trap for protocol 1
    /// never caught it.
    @Test func icmpTrapsICMPv6OnIPv6() throws {
        let plan = try XFRMTrapPlan.plan(try Policy(lines: ["permit icmp any any", "permit icmp 2001:db8:1::/64 2001:db8:2::/64"]),
                                         maxSelectorsPerEntry: 16)
        #expect(plan.filter { $0.trap }.map { "\($0.family) \($0.proto)" } == ["IPv4 1", "IPv6 58", "IPv6 58"])
        let ping6 = try Packet(parsing: "ipv6-icmp [2001:db8:1::10]:128 [2001:db8:2::20]:0")
        #expect(KernelPolicyModel(installing: plan).lookup(ping6)?.trap == true)
        let bypass = XFRMTrapPlan.tunnelBypass(proto: .icmp, source: try #require(AddressPattern("2001:db8:1::/64")), sourcePorts: .all,
                                               destination: try #require(AddressPattern("2001:db8:2::/64")), destinationPorts: .all)
        #expect(bypass.map(\.proto) == [58])
    }

    /// Found under kernel ESP: with a remote half holding the gateway's own inside /64, its
    /// trap caught the gateway's Neighbor Advertisements to its hosts, so IPv6 hosts never
    /// resolved their gateway. ND goes ahead of every trap; other ICMPv6 does not.
    @Test func neighborDiscoveryGoesAheadOfTheTraps() throws {
        let plan = try XFRMTrapPlan.plan(try Policy(lines: ["permit ip 2001:db8:1::/64 2001:db8::/32"]), maxSelectorsPerEntry: 16)
        let kernel = KernelPolicyModel(installing: plan)
        for type in 133...137 {
            let advert = try Packet(parsing: "ipv6-icmp [2001:db8:1::1]:\(type) [2001:db8:1::10]:0")
            #expect(kernel.lookup(advert)?.trap == false, "ICMPv6 type \(type)")
        }
        #expect(kernel.lookup(try Packet(parsing: "ipv6-icmp [2001:db8:1::1]:128 [2001:db8:2::20]:0"))?.trap == true)
        #expect(kernel.lookup(try Packet(parsing: "ipv6-icmp [2001:db8:1::1]:138 [2001:db8:2::20]:0"))?.trap == true)
        #expect(try XFRMTrapPlan.plan(try Policy(lines: ["permit ip 198.18.1.0/24 198.18.0.0/15"]), maxSelectorsPerEntry: 16).count == 1)
    }

    @Test func anyAnyCoversBothFamilies() throws {
        let plan = try XFRMTrapPlan.plan(try Policy(lines: ["permit udp any any eq 53"]), maxSelectorsPerEntry: 16)
        #expect(Set(plan.map(\.family)) == [.v4, .v6])
    }

    /// Brute force: the blocks of a range cover exactly that range.
    @Test func portBlocksCoverExactlyTheRange() {
        for (low, high) in [(0, 65535), (1024, 65535), (0, 1023), (80, 80), (1, 65534), (1000, 2000), (443, 444)] {
            let range = PortRange(UInt16(low), UInt16(high))!
            let blocks = XFRMTrapPlan.portBlocks(range)
            for port in stride(from: 0, through: 65535, by: 1) {
                let covered = blocks.contains { UInt16(port) & $0.mask == $0.port }
                #expect(covered == range.contains(UInt16(port)), "\(range) at \(port)")
            }
            #expect(blocks.count <= 32)
        }
    }

    @Test func nonContiguousMaskBecomesItsPrefixes() throws {
        let pattern = try #require(AddressPattern("198.18.0.5/255.255.252.255"))
        let prefixes = try #require(pattern.prefixes(limit: 16))
        #expect(prefixes.count == 4 && pattern.prefixCount == 4)
        #expect(pattern.prefixes(limit: 3) == nil)
        #expect(prefixes.map(\.description).sorted() == ["198.18.0.5/32", "198.18.1.5/32", "198.18.2.5/32", "198.18.3.5/32"])
        for low in 0...1023 {
            let address = IPAddress(v4: 0xC612_0000 | UInt32(low))
            #expect(pattern.contains(address) == prefixes.contains { $0.contains(address) })
        }
    }

    @Test func refusesWhatXFRMCannotHoldWithinTheLimit() throws {
        let policy = try Policy(lines: ["permit ip 198.18.0.5 0.0.255.0 any"])
        #expect(throws: XFRMPlanError.self) { try XFRMTrapPlan.plan(policy, maxSelectorsPerEntry: 16) }
        #expect(try XFRMTrapPlan.plan(policy, maxSelectorsPerEntry: 256).count == 256)
    }

    /// The review's reproduction: the deny's selector for 1004-1005 equals the permit's own
    /// block for those ports; installed after it, it would replace the trap.
    @Test func aLaterEntryWithAnEqualSelectorLeavesTheEarlierOneInPlace() throws {
        let policy = try Policy(lines: ["permit tcp 198.18.1.0/24 198.18.2.0/24 range 1000 1005",
                                        "deny tcp 198.18.1.0/24 198.18.2.0/24 range 1004 1005",
                                        "permit tcp 198.18.1.0/24 198.18.2.0/24 range 1000 1005"])
        let plan = try XFRMTrapPlan.plan(policy, maxSelectorsPerEntry: 16)
        #expect(plan.count == 2 && plan.allSatisfy { $0.trap && $0.ruleIndex == 1 })
        let kernel = KernelPolicyModel(installing: plan)
        let packet = try Packet(parsing: "tcp 198.18.1.1:40000 198.18.2.20:1004")
        #expect(kernel.lookup(packet)?.trap == true)
    }

    /// Property: whatever selectors coincide, the installed set answers every packet as the
    /// ACL's first match: the same entry, so a permit's packet meets its trap.
    @Test func theInstalledPoliciesAnswerEveryPacketAsFirstMatch() throws {
        var rng = SeededRNG(seed: 1004)
        let addresses = ["any", "198.18.1.0/24", "198.18.1.0/25", "198.18.1.128/25", "host 198.18.1.5",
                         "198.18.0.0/23", "198.18.1.0 0.0.0.5", "198.18.2.0/24", "host 198.18.2.20"]
        let ports = ["", "eq 1004", "range 1000 1005", "range 1004 1005", "lt 1024", "gt 1003", "range 1004 1007"]
        let protocols = ["ip", "tcp", "udp", "icmp", "gre"]
        let hosts = ["198.18.1.5", "198.18.1.4", "198.18.1.200", "198.18.0.9", "198.18.2.20", "198.18.2.21"]
        let packetPorts: [UInt16] = [80, 999, 1000, 1003, 1004, 1005, 1006, 1008, 5000]
        for round in 0..<300 {
            var lines: [String] = []
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let proto = protocols.randomElement(using: &rng)!
                let withPorts = proto == "tcp" || proto == "udp"
                let local = addresses.randomElement(using: &rng)!, remote = addresses.randomElement(using: &rng)!
                let localPorts = withPorts && Bool.random(using: &rng) ? ports.randomElement(using: &rng)! : ""
                let remotePorts = withPorts ? ports.randomElement(using: &rng)! : ""
                let action = Bool.random(using: &rng) ? "permit" : "deny"
                lines.append("\(action) \(proto) \(local) \(localPorts) \(remote) \(remotePorts)")
            }
            // A line repeated further down, as an operator's merge might leave it.
            if Bool.random(using: &rng) { lines.append(lines.randomElement(using: &rng)!) }
            let policy = try Policy(lines: lines)
            let kernel = KernelPolicyModel(installing: try XFRMTrapPlan.plan(policy, maxSelectorsPerEntry: 4096))
            for _ in 0..<40 {
                let proto = ["tcp", "udp", "icmp", "gre"].randomElement(using: &rng)!
                let source = hosts.randomElement(using: &rng)!, destination = hosts.randomElement(using: &rng)!
                let text = switch proto {
                case "tcp", "udp": "\(proto) \(source):\(packetPorts.randomElement(using: &rng)!) \(destination):\(packetPorts.randomElement(using: &rng)!)"
                case "icmp": "icmp \(source):8 \(destination):0"
                default: "gre \(source) \(destination)"
                }
                let packet = try Packet(parsing: text)
                let expected = policy.firstMatch(packet, as: .initiator)
                let installed = kernel.lookup(packet)
                #expect(installed?.ruleIndex == expected?.index, "round \(round): \(packet) under \(lines)")
                #expect(installed?.trap ?? false == (expected?.entry.action == .permit), "round \(round): \(packet) under \(lines)")
            }
        }
    }
}
