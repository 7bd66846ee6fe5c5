import Testing
import TEDModel
@testable import TEDLinux

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
}
