import NIOCore
import Testing
import TEDTestSupport
import TEDModel
import TEDWire
@testable import TEDEngine

/// Initiator and responder in memory: what each pair of policies discovers for a packet.
@Suite struct IntersectionScenarioTests {
    struct Scenario: CustomTestStringConvertible, Sendable {
        var local: String
        var remote: String
        var packet: String
        /// The intersection in the initiator's view, as an entry without action.
        var expected: String
        var family: IPAddress.Family = .v4
        var testDescription: String { "\(local) × \(remote) for \(packet)" }
    }

    static let scenarios: [Scenario] = [
        // Patent FIG. 3B example: 10.11.0.0/255.255.0.0 with 10.0.0.0/255.0.0.0.
        Scenario(local: "permit ip 10.11.0.0/16 10.0.0.0/8", remote: "permit ip 10.0.0.0/8 10.11.0.0/16",
                 packet: "tcp 10.11.3.4:1000 10.2.2.2:80", expected: "ip 10.11.0.0/16 10.0.0.0/8"),
        // Protocol narrows: any with tcp is tcp.
        Scenario(local: "permit ip 10.1.0.0/16 10.2.0.0/16", remote: "permit tcp 10.2.0.0/16 10.1.0.0/16",
                 packet: "tcp 10.1.0.1:1000 10.2.0.1:80", expected: "tcp 10.1.0.0/16 10.2.0.0/16"),
        // Ports narrow on both sides.
        Scenario(local: "permit tcp 10.1.0.0/16 gt 1023 10.2.0.0/16", remote: "permit tcp 10.2.0.0/16 eq 443 10.1.0.0/16",
                 packet: "tcp 10.1.0.1:40000 10.2.0.1:443", expected: "tcp 10.1.0.0/16 gt 1023 10.2.0.0/16 eq 443"),
        // Addresses narrow on both sides.
        Scenario(local: "permit ip 10.1.1.0/24 10.0.0.0/8", remote: "permit ip 10.2.0.0/16 10.1.0.0/16",
                 packet: "udp 10.1.1.9:5 10.2.3.4:6", expected: "ip 10.1.1.0/24 10.2.0.0/16"),
        // Non-contiguous masks on both sides combine bitwise.
        Scenario(local: "permit ip 10.1.0.5/255.255.0.255 10.2.0.0/16",
                 remote: "permit ip 10.2.0.9/255.255.0.255 10.0.0.0/8",
                 packet: "tcp 10.1.7.5:1 10.2.8.9:2", expected: "ip 10.1.0.5/255.255.0.255 10.2.0.9/255.255.0.255"),
        // ICMP: type on the initiator side, code on the responder side.
        Scenario(local: "permit icmp 10.1.0.0/16 10.2.0.0/16", remote: "permit icmp 10.2.0.0/16 10.1.0.0/16 8 0",
                 packet: "icmp 10.1.0.1:8 10.2.0.1:0", expected: "icmp 10.1.0.0/16 10.2.0.0/16 8 0"),
        // IPv6 narrowing by protocol, ports and addresses.
        Scenario(local: "permit ipv6 2001:db8:1::/48 2001:db8::/32",
                 remote: "permit udp 2001:db8:2::/48 eq 53 2001:db8:1:5::/64",
                 packet: "udp [2001:db8:1:5::9]:5353 [2001:db8:2::20]:53",
                 expected: "udp 2001:db8:1:5::/64 2001:db8:2::/48 eq 53", family: .v6),
    ]

    @Test(arguments: scenarios)
    func discovers(_ scenario: Scenario) throws {
        let identity = scenario.family == .v4 ? initiatorIdentity : initiatorIdentity6
        var initiator = Initiator(policy: policy(scenario.local), identity: identity)
        var responder = Responder(policy: policy(scenario.remote),
                                  identity: scenario.family == .v4 ? responderIdentity : responderIdentity6,
                                  settings: generousResponderSettings())
        var rng = SeededRNG(seed: 21)
        let p = packet(scenario.packet)
        let discovery = try #require(exchange(&initiator, &responder, p, now: t0, rng: &rng)?.discovery)
        #expect(discovery.intersection == proxy(scenario.expected, family: scenario.family))
        #expect(discovery.chosenEntry == 0 && discovery.intersection.contains(p))
    }

    @Test func disjointPoliciesNeverAnswerSoTheDiscoveryTimesOut() throws {
        var initiator = Initiator(policy: policy("permit tcp 10.1.0.0/16 10.2.0.0/16"), identity: initiatorIdentity,
                                  settings: DiscoverySettings(retries: 1))
        var responder = Responder(policy: policy("permit udp 10.2.0.0/16 10.1.0.0/16"), identity: responderIdentity,
                                  settings: generousResponderSettings())
        var rng = SeededRNG(seed: 22)
        #expect(exchange(&initiator, &responder, packet("tcp 10.1.0.1:1 10.2.0.1:80"), now: t0, rng: &rng) == nil)
        #expect(responder.counters.drops == [.noMatch: 1])
        var failures: [Failure] = []
        while let due = initiator.nextDeadline, failures.isEmpty {
            failures += initiator.tick(now: due).compactMap(\.failure)
        }
        #expect(failures.map(\.reason) == [.timeout] && failures.first?.attempts == 2)
    }
}
