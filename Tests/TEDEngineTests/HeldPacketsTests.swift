import NIOCore
import Testing
import TEDModel
@testable import TEDEngine

/// First packets held for their tunnel: bounded per flow, in all, in bytes and in time;
/// released per flow in order.
@Suite struct HeldPacketsTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    func flow(_ port: UInt16, to destination: String = "198.18.2.20") -> Packet {
        Packet(proto: .tcp, source: IPAddress("198.18.1.10")!, destination: IPAddress(destination)!,
               sourcePort: port, destinationPort: 443)!
    }

    @Test func aFlowHoldsAtMostPerFlow() {
        var held = HeldPackets(limits: .init(perFlow: 2, packets: 10))
        #expect(held.arrive(id: 1, packet: flow(1), length: 60, now: start) == .hold)
        #expect(held.arrive(id: 2, packet: flow(1), length: 60, now: start) == .hold)
        #expect(held.arrive(id: 3, packet: flow(1), length: 60, now: start) == .drop(.flowFull))
        #expect(held.arrive(id: 4, packet: flow(2), length: 60, now: start) == .hold)
        #expect(held.count == 3 && held.bytes == 180 && held.flowCount == 2)
    }

    @Test func atMostPacketsAndBytesInAll() {
        var byCount = HeldPackets(limits: .init(perFlow: 4, packets: 2))
        #expect(byCount.arrive(id: 1, packet: flow(1), length: 60, now: start) == .hold)
        #expect(byCount.arrive(id: 2, packet: flow(2), length: 60, now: start) == .hold)
        #expect(byCount.arrive(id: 3, packet: flow(3), length: 60, now: start) == .drop(.full))
        var byBytes = HeldPackets(limits: .init(perFlow: 4, packets: 10, bytes: 3000))
        #expect(byBytes.arrive(id: 1, packet: flow(1), length: 1500, now: start) == .hold)
        #expect(byBytes.arrive(id: 2, packet: flow(1), length: 1500, now: start) == .hold)
        #expect(byBytes.arrive(id: 3, packet: flow(2), length: 1, now: start) == .drop(.full))
        var byOneByte = HeldPackets(limits: .init(perFlow: 4, packets: 10, bytes: 3000))
        #expect(byOneByte.arrive(id: 1, packet: flow(1), length: 1500, now: start) == .hold)
        #expect(byOneByte.arrive(id: 2, packet: flow(2), length: 1501, now: start) == .drop(.full), "3001 bytes would be held")
        #expect(byOneByte.arrive(id: 3, packet: flow(2), length: 1500, now: start) == .hold, "exactly the limit is allowed")
        // Room comes back once packets leave.
        #expect(byBytes.release { $0 == flow(1) } == [1, 2])
        #expect(byBytes.count == 0 && byBytes.bytes == 0)
        #expect(byBytes.arrive(id: 4, packet: flow(2), length: 1500, now: start) == .hold)
    }

    @Test func releaseTakesTheCoveredFlowsInArrivalOrderAndLeavesTheRest() {
        var held = HeldPackets(limits: .init(perFlow: 4, packets: 10))
        for (id, port) in [(10, 1), (11, 2), (12, 1), (13, 1)] as [(UInt32, UInt16)] {
            _ = held.arrive(id: id, packet: flow(port), length: 60, now: start)
        }
        _ = held.arrive(id: 14, packet: flow(1, to: "198.18.3.30"), length: 60, now: start)
        let covered = held.release { $0.destination == IPAddress("198.18.2.20")! && $0.sourcePort == 1 }
        #expect(covered == [10, 12, 13])
        #expect(held.count == 2)
        #expect(held.release { _ in false } == [])
        #expect(held.removeAll().sorted() == [11, 14])
        #expect(held.count == 0 && held.flowCount == 0)
    }

    @Test func packetsOlderThanTheTimeExpireOthersStay() {
        var held = HeldPackets(limits: .init(perFlow: 4, packets: 10, time: .seconds(2)))
        _ = held.arrive(id: 1, packet: flow(1), length: 60, now: start)
        _ = held.arrive(id: 2, packet: flow(1), length: 60, now: start + .seconds(1))
        #expect(held.expire(now: start + .milliseconds(1_999)) == [])
        #expect(held.expire(now: start + .seconds(2)) == [1])
        #expect(held.count == 1)
        #expect(held.arrive(id: 3, packet: flow(1), length: 60, now: start + .seconds(2)) == .hold)
        #expect(held.expire(now: start + .seconds(10)).sorted() == [2, 3])
        #expect(held.count == 0 && held.bytes == 0 && held.flowCount == 0)
    }

    @Test func summaryListsFlowsByTheirFirstPacket() {
        var held = HeldPackets(limits: .init())
        _ = held.arrive(id: 1, packet: flow(2), length: 60, now: start)
        _ = held.arrive(id: 2, packet: flow(1), length: 60, now: start + .seconds(1))
        _ = held.arrive(id: 3, packet: flow(2), length: 60, now: start + .seconds(1))
        #expect(held.summary.map(\.packet) == [flow(2), flow(1)])
        #expect(held.summary.map(\.count) == [2, 1])
    }
}
