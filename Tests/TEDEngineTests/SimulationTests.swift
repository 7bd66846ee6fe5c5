import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// The initiator against two responders over a lossy, duplicating, reordering network.
@Suite struct SimulationTests {
    /// One flow: packets that differ only in their source port, and what discovery should give.
    struct Flow {
        var packets: [Packet]
        /// The intersection when it is discovered; nil when no responder answers it.
        var expected: Proxy?
    }

    static let initiatorPolicy = policy("permit ip 10.1.0.0/16 10.0.0.0/8",
                                        "permit udp 2001:db8:1::/48 2001:db8::/32")
    static let siteA = Identity(address: ip("198.51.100.10"), port: 0)
    static let siteB = Identity(address: ip("198.51.100.20"), port: 4500)
    /// Every flow gets its own responder entry, so no discovery's intersection holds another
    /// flow's packets (a cache hit there would rightly mean no probe).
    static let siteAPolicy = policy(lines: ["deny tcp 10.2.9.0/24 10.1.0.0/16"]
        + (1...3).map { "permit tcp 10.2.\($0).0/24 eq 443 10.1.0.0/16" }
        + (1...3).map { "permit udp 2001:db8:2:\($0)::/64 eq 53 2001:db8:1::/48" })
    static let siteBPolicy = policy(lines: (1...3).map { "permit udp 10.3.0.\($0)/255.255.0.255 eq 53 10.1.0.0/16" })

    /// Flows of five kinds, three destinations each, four packets each.
    static func flows() -> [Flow] {
        var flows: [Flow] = []
        func packets(_ make: (UInt16) -> String) -> [Packet] { (0..<4).map { packet(make(40000 + $0)) } }
        for host in 1...3 {
            flows.append(Flow(packets: packets { "tcp 10.1.0.\(host):\($0) 10.2.\(host).7:443" },
                              expected: proxy("tcp 10.1.0.0/16 10.2.\(host).0/24 eq 443")))
            flows.append(Flow(packets: packets { "udp 10.1.0.\(host):\($0) 10.3.7.\(host):53" },
                              expected: proxy("udp 10.1.0.0/16 10.3.0.\(host)/255.255.0.255 eq 53")))
            flows.append(Flow(packets: packets { "udp [2001:db8:1::\(host)]:\($0) [2001:db8:2:\(host)::20]:53" },
                              expected: proxy("udp 2001:db8:1::/48 2001:db8:2:\(host)::/64 eq 53", family: .v6)))
            flows.append(Flow(packets: packets { "tcp 10.1.0.\(host):\($0) 10.2.9.\(host):443" }, expected: nil))
            flows.append(Flow(packets: packets { "tcp 10.1.0.\(host):\($0) 10.4.\(host).1:443" }, expected: nil))
        }
        return flows
    }

    struct Outcome {
        var firstSends = 0
        var sends = 0
        var discovered: [Discovery] = []
        var failed: [Failure] = []
        var cookie: Cookie?
        var endedAt: NIODeadline?
        var responsesWhilePending = 0
    }

    /// Runs one seeded world to quiescence and checks every invariant on the way.
    static func run(seed: UInt64, loss: Double, duplication: Double, delay: ClosedRange<Int64> = 1...400) -> [Outcome] {
        var rng = SeededRNG(seed: seed)
        var network = SimulatedNetwork(seed: seed &* 31 &+ 7, loss: loss, duplication: duplication, delay: delay)
        var initiator = Initiator(policy: initiatorPolicy, identity: initiatorIdentity,
                                  settings: DiscoverySettings(peers: [PeerAuthorization(identity: pattern("198.51.100.0/24"))]))
        var responders = [
            Responder(policy: siteAPolicy, identity: siteA, settings: generousResponderSettings()),
            Responder(policy: siteBPolicy, identity: siteB, settings: generousResponderSettings()),
        ]
        let flows = flows()
        var arrivals: [(at: NIODeadline, flow: Int, packet: Packet)] = []
        for (index, flow) in flows.enumerated() {
            for p in flow.packets { arrivals.append((at(Int64.random(in: 0...3000, using: &rng)), index, p)) }
        }
        arrivals.sort { ($0.at, $0.flow, $0.packet.sourcePort ?? 0) < ($1.at, $1.flow, $1.packet.sourcePort ?? 0) }
        var outcomes = Array(repeating: Outcome(), count: flows.count)
        var flowOfCookie: [Cookie: Int] = [:]
        var answers: [Cookie: Set<ByteBuffer>] = [:]

        func handle(_ actions: [InitiatorAction], flow: Int?, now: NIODeadline) {
            for action in actions {
                switch action {
                case .send(let probe):
                    let owner = flow ?? flowOfCookie[probe.cookie] ?? -1
                    #expect(owner >= 0)
                    guard owner >= 0 else { continue }
                    if probe.attempt == 1 {
                        outcomes[owner].firstSends += 1
                        outcomes[owner].cookie = probe.cookie
                        flowOfCookie[probe.cookie] = owner
                    }
                    outcomes[owner].sends += 1
                    network.send(.init(bytes: probe.bytes, source: probe.source, sourcePort: probe.sourcePort,
                                       destination: probe.destination, destinationPort: probe.destinationPort), now: now)
                case .discovered(let discovery):
                    guard let owner = flows.firstIndex(where: { $0.packets.contains(discovery.packet) }) else {
                        Issue.record("discovery for an unknown packet \(discovery.packet)")
                        continue
                    }
                    outcomes[owner].discovered.append(discovery)
                    outcomes[owner].endedAt = now
                case .failed(let failure):
                    guard let owner = flows.firstIndex(where: { $0.packets.contains(failure.packet) }) else {
                        Issue.record("failure for an unknown packet \(failure.packet)")
                        continue
                    }
                    outcomes[owner].failed.append(failure)
                    outcomes[owner].endedAt = now
                case .joined, .cached, .failedCached, .ignored:
                    break
                case .notProtected(let p):
                    Issue.record("flow packet \(p) should be protected")
                case .rejected(let reason):
                    Issue.record("the initiator rejected a datagram: \(reason)")
                }
            }
        }

        var now = t0
        var nextArrival = 0
        for _ in 0..<100_000 {
            let candidates = [arrivals.indices.contains(nextArrival) ? arrivals[nextArrival].at : nil,
                              network.nextDelivery, initiator.nextDeadline].compactMap { $0 }
            guard let next = candidates.min(), next <= at(20_000) else { break }
            now = next
            while arrivals.indices.contains(nextArrival), arrivals[nextArrival].at <= now {
                let arrival = arrivals[nextArrival]
                nextArrival += 1
                let actions = initiator.packet(arrival.packet, now: now, rng: &rng)
                if outcomes[arrival.flow].firstSends > 0 {
                    // Never a second probe for a flow already probed.
                    #expect(actions.sentProbe == nil, "second probe for \(arrival.packet)")
                }
                handle([actions], flow: arrival.flow, now: now)
            }
            for datagram in network.deliver(until: now) {
                if datagram.destination == initiatorIdentity.address {
                    #expect(datagram.destinationPort == initiatorIdentity.effectivePort)
                    let actions = initiator.received(datagram.bytes, from: datagram.source, port: datagram.sourcePort,
                                                     now: now)
                    if case .response(let response) = try? TEDCodec.decode(datagram.bytes),
                       let owner = flowOfCookie[response.initiatorCookie], outcomes[owner].endedAt == nil {
                        outcomes[owner].responsesWhilePending += 1
                    }
                    handle([actions], flow: nil, now: now)
                } else if let site = siteIndex(for: datagram.destination) {
                    let action = responders[site].received(datagram.bytes, from: datagram.source,
                                                           port: datagram.sourcePort, now: now)
                    if case .reply(let bytes, let to, let port, _) = action {
                        if case .response(let response) = try? TEDCodec.decode(bytes) {
                            answers[response.initiatorCookie, default: []].insert(bytes)
                        }
                        network.send(.init(bytes: bytes, source: responders[site].identity.address, sourcePort: 500,
                                           destination: to, destinationPort: port), now: now)
                    }
                }
                // Datagrams for 10.4.0.0/16 have no TED responder on their path: they vanish.
            }
            handle(initiator.tick(now: now), flow: nil, now: now)
            #expect(initiator.snapshot.pending.count <= initiator.settings.maxPending)
        }
        #expect(initiator.snapshot.pending.isEmpty, "discoveries still pending at the end")
        // A responder answers every copy of a probe with the same bytes.
        #expect(answers.values.allSatisfy { $0.count == 1 })
        for (index, flow) in flows.enumerated() {
            let outcome = outcomes[index]
            #expect(outcome.firstSends == 1, "flow \(index) probed \(outcome.firstSends) times")
            #expect(outcome.discovered.count + outcome.failed.count == 1, "flow \(index) ended more than once")
            #expect(outcome.sends <= initiator.settings.retries + 1)
            if let discovery = outcome.discovered.first {
                #expect(flow.expected == discovery.intersection, "flow \(index): \(discovery.intersection)")
                #expect(discovery.intersection.contains(discovery.packet))
            }
            if let failure = outcome.failed.first {
                #expect(failure.reason == .timeout)
                #expect(outcome.sends == initiator.settings.retries + 1)
                #expect(outcome.responsesWhilePending == 0, "flow \(index) timed out although answered")
            }
            if flow.expected == nil { #expect(outcome.failed.count == 1) }
        }
        return outcomes
    }

    /// Which responder sits on the path to a destination: site A for 10.2/16 and 2001:db8:2::/48, B for 10.3/16.
    static func siteIndex(for destination: IPAddress) -> Int? {
        if pattern("10.2.0.0/16").contains(destination) || pattern("2001:db8:2::/48").contains(destination) { return 0 }
        if pattern("10.3.0.0/16").contains(destination) { return 1 }
        return nil
    }

    @Test func perfectNetworkDiscoversEveryProtectedFlow() {
        // Round trips stay under the first retransmission wait (450 ms at the least).
        let outcomes = Self.run(seed: 1, loss: 0, duplication: 0, delay: 1...200)
        for (outcome, flow) in zip(outcomes, Self.flows()) where flow.expected != nil {
            #expect(outcome.discovered.count == 1 && outcome.sends == 1)
        }
    }

    @Test(arguments: 0..<40)
    func lossDuplicationAndReordering(seed: Int) {
        _ = Self.run(seed: UInt64(seed), loss: 0.3, duplication: 0.25)
    }

    @Test func heavyLossStillEndsEveryDiscoveryOnce() {
        for seed in 100..<110 {
            _ = Self.run(seed: UInt64(seed), loss: 0.7, duplication: 0.5)
        }
    }
}
