import NIOCore
import Testing
import TEDModel
import TEDTestSupport
@testable import TEDEngine

/// First packets held for their tunnel: bounded per flow, per source prefix, in all, in
/// bytes and in time; released per flow in order; a packet over a bound still asks for its
/// discovery, one of a flow known to fail is not held.
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

    func from(_ source: String, port: UInt16, to destination: String = "198.18.2.20") -> Packet {
        Packet(proto: .tcp, source: IPAddress(source)!, destination: IPAddress(destination)!,
               sourcePort: port, destinationPort: 443)!
    }

    @Test func aSourcePrefixHoldsAtMostPerSource() {
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 3, packets: 100))
        #expect(held.arrive(id: 1, packet: flow(1), length: 60, now: start) == .hold)
        #expect(held.arrive(id: 2, packet: flow(2), length: 60, now: start) == .hold)
        #expect(held.arrive(id: 3, packet: flow(2), length: 60, now: start) == .hold, "exactly perSource is held")
        #expect(held.arrive(id: 4, packet: flow(3), length: 60, now: start) == .drop(.sourceFull), "one over is not")
        #expect(held.arrive(id: 5, packet: from("198.18.1.254", port: 1), length: 60, now: start) == .drop(.sourceFull),
                "another host of the same /24 counts with it")
        #expect(held.arrive(id: 6, packet: from("198.18.0.10", port: 1), length: 60, now: start) == .hold,
                "the next /24 has its own room")
        #expect(held.count == 4 && held.sourceCount == 2)
        // Room comes back as the source's packets leave, and an emptied prefix is forgotten.
        #expect(held.release { $0 == flow(2) } == [2, 3])
        #expect(held.arrive(id: 7, packet: flow(3), length: 60, now: start) == .hold)
        #expect(held.expire(now: start + .seconds(3)).sorted() == [1, 6, 7])
        #expect(held.count == 0 && held.sourceCount == 0)
    }

    @Test func anIPv6SourcePrefixIsASlash64() {
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 1, packets: 100))
        let v6 = { (source: String) in
            Packet(proto: .tcp, source: IPAddress(source)!, destination: IPAddress("2001:db8:2::20")!,
                   sourcePort: 1000, destinationPort: 443)!
        }
        #expect(held.arrive(id: 1, packet: v6("2001:db8:1::10"), length: 80, now: start) == .hold)
        #expect(held.arrive(id: 2, packet: v6("2001:db8:1:0:ffff:ffff:ffff:ffff"), length: 80, now: start)
            == .drop(.sourceFull))
        #expect(held.arrive(id: 3, packet: v6("2001:db8:1:1::10"), length: 80, now: start) == .hold)
    }

    /// A source past its bound leaves the rest of the hold to the others: another source's
    /// first packet is held and released into its tunnel.
    @Test func aFloodingSourceLeavesRoomForOtherSources() {
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 32, packets: 256))
        var decisions: [HeldPackets.Decision] = []
        for port in 1...300 {
            decisions.append(held.arrive(id: UInt32(port), packet: flow(UInt16(port), to: "198.18.2.99"),
                                         length: 60, now: start))
        }
        #expect(decisions.prefix(32).allSatisfy { $0 == .hold })
        #expect(decisions.dropFirst(32).allSatisfy { $0 == .drop(.sourceFull) })
        #expect(decisions.allSatisfy { $0.startsDiscovery }, "every flooding packet asks for its discovery")
        let other = from("198.18.7.10", port: 40000)
        #expect(held.arrive(id: 1000, packet: other, length: 60, now: start + .milliseconds(10)) == .hold)
        #expect(held.release { $0.source == other.source } == [1000])
    }

    /// The global bounds stay: enough sources, each within its own bound, fill them.
    @Test func sourcesWithinTheirBoundsStillMeetTheGlobalOne() {
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 2, packets: 4))
        for (id, source) in [(1, "198.18.1.10"), (2, "198.18.1.10"), (3, "198.18.3.10"), (4, "198.18.3.10")] as [(UInt32, String)] {
            #expect(held.arrive(id: id, packet: from(source, port: UInt16(id)), length: 60, now: start) == .hold)
        }
        #expect(held.arrive(id: 5, packet: from("198.18.5.10", port: 5), length: 60, now: start) == .drop(.full))
    }

    @Test(arguments: HeldPackets.DropReason.allCases)
    func aPacketDroppedOverABoundStillStartsItsDiscovery(reason: HeldPackets.DropReason) {
        let overABound: Set<HeldPackets.DropReason> = [.flowFull, .sourceFull, .full]
        #expect(HeldPackets.Decision.drop(reason).startsDiscovery == overABound.contains(reason))
        #expect(HeldPackets.Decision.hold.startsDiscovery)
    }

    @Test func aFlowKnownToFailIsDroppedAtOnceAndTakesNoRoom() {
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 32, packets: 256))
        #expect(held.arrive(id: 1, packet: flow(1), length: 60, knownFailing: true, now: start) == .drop(.knownFailing))
        #expect(held.count == 0 && held.bytes == 0 && held.flowCount == 0 && held.sourceCount == 0)
        #expect(!HeldPackets.Decision.drop(.knownFailing).startsDiscovery)
        #expect(held.arrive(id: 2, packet: flow(1), length: 60, knownFailing: false, now: start) == .hold)
    }

    /// The hold and the initiator together, as the daemon drives them: one inside host sends
    /// a new flow (a new source port) to a dead address every 30 ms. Its packets over its
    /// bound still ask for discovery, which sends one probe, not one per packet; once that
    /// discovery failed, its packets are dropped at once; another host's first packets are
    /// held throughout.
    @Test func aFloodToADeadAddressSendsOneProbeThenIsDroppedAtOnce() throws {
        var initiator = Initiator(policy: policy("permit tcp 198.18.0.0/16 198.18.2.0/24"), identity: initiatorIdentity,
                                  settings: DiscoverySettings(retries: 1, negativeTTL: .seconds(30)))
        var held = HeldPackets(limits: .init(perFlow: 4, perSource: 8, packets: 16, time: .seconds(2)))
        var rng = SeededRNG(seed: 48)
        var decisions: [HeldPackets.Decision] = []
        var answers: [InitiatorAction] = []
        var others: [HeldPackets.Decision] = []
        var failedAt: Int?
        for step in 0..<200 {
            let now = start + .milliseconds(Int64(step) * 30)
            let due = initiator.tick(now: now)
            if due.contains(where: { $0.failure?.reason == .timeout }) { failedAt = step }
            answers += due
            _ = held.expire(now: now)
            let p = flow(UInt16(10_000 + step), to: "198.18.2.99")
            let decision = held.arrive(id: UInt32(step), packet: p, length: 60,
                                       knownFailing: initiator.knownFailure(of: p, now: now) != nil, now: now)
            decisions.append(decision)
            if decision.startsDiscovery { answers.append(initiator.packet(p, now: now, rng: &rng)) }
            if step % 20 == 0 {
                let q = from("198.18.9.\(step / 20 + 1)", port: 40000)
                others.append(held.arrive(id: UInt32(1000 + step), packet: q, length: 60, now: now))
                _ = held.release { $0 == q }
            }
        }
        let failed = try #require(failedAt, "the dead address's discovery timed out")
        let probes = answers.filter { if case .send(let probe) = $0 { probe.attempt == 1 } else { false } }
        let joined = answers.filter { if case .joined = $0 { true } else { false } }
        #expect(probes.count == 1, "one probe for the dead address, whatever the flood")
        #expect(joined.count == failed - 1, "every other packet before the failure joined it")
        #expect(decisions[..<failed].contains(.drop(.sourceFull)), "the flood went over its bound")
        #expect(!decisions[..<failed].contains(.drop(.knownFailing)))
        #expect(decisions[failed...].allSatisfy { $0 == .drop(.knownFailing) },
                "once failed, the flood is dropped at once and asks no more")
        #expect(others.allSatisfy { $0 == .hold }, "every other host's first packet was held")
    }
}
