import Testing
@testable import TEDModel

/// The scenarios of docs/TED-V2-VS-V3.md: where the v1/v2 half-proxy merge fails and v3 works.
struct Scenario: CustomTestStringConvertible, Sendable {
    let name: String
    let initiator: String
    let responder: String
    let packet: String
    let v2: HalfProxyMerge.Failure?
    let v3: String?
    var testDescription: String { name }
}

let scenarios: [Scenario] = [
    Scenario(name: "plain subnets, both sides symmetric",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "ip 198.18.2.0/24 198.18.1.0/24",
             packet: "tcp 198.18.1.10:40000 198.18.2.20:443",
             v2: nil, v3: "ip 198.18.1.0/24 <-> 198.18.2.0/24"),
    Scenario(name: "responder protects one transport protocol",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "tcp 198.18.2.0/24 198.18.1.0/24",
             packet: "tcp 198.18.1.10:40000 198.18.2.20:443",
             v2: .exceedsResponderPolicy, v3: "tcp 198.18.1.0/24 <-> 198.18.2.0/24"),
    Scenario(name: "responder protects one port",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "tcp 198.18.2.0/24 eq 443 198.18.1.0/24",
             packet: "tcp 198.18.1.10:40000 198.18.2.20:443",
             v2: .exceedsResponderPolicy, v3: "tcp 198.18.1.0/24 <-> 198.18.2.0/24 port 443"),
    Scenario(name: "initiator restricts protocol and ports",
             initiator: "udp 198.18.1.0/24 198.18.2.0/24 eq 53", responder: "ip 198.18.2.0/24 198.18.1.0/24",
             packet: "udp 198.18.1.10:5353 198.18.2.20:53",
             v2: .exceedsInitiatorPolicy, v3: "udp 198.18.1.0/24 <-> 198.18.2.0/24 port 53"),
    Scenario(name: "initiator restricts the destination side",
             initiator: "ip 198.18.1.0/24 198.18.2.0/25", responder: "ip 198.18.2.0/24 198.18.1.0/24",
             packet: "tcp 198.18.1.10:40000 198.18.2.20:443",
             v2: .exceedsInitiatorPolicy, v3: "ip 198.18.1.0/24 <-> 198.18.2.0/25"),
    Scenario(name: "responder restricts the source side",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "ip 198.18.2.0/24 198.18.1.0/28",
             packet: "tcp 198.18.1.10:40000 198.18.2.20:443",
             v2: .exceedsResponderPolicy, v3: "ip 198.18.1.0/28 <-> 198.18.2.0/24"),
    Scenario(name: "responder protects host .5 of every /24 (non-contiguous mask)",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "ip 198.18.0.5 0.0.255.0 198.18.0.0/16",
             packet: "udp 198.18.1.10:4000 198.18.2.5:4000",
             v2: .exceedsInitiatorPolicy, v3: "ip 198.18.1.0/24 <-> 198.18.2.5/32"),
    Scenario(name: "IPv6, responder protects DNS only",
             initiator: "ip 2001:db8:1::/48 2001:db8::/32", responder: "udp 2001:db8:2::/48 eq 53 2001:db8::/32",
             packet: "udp [2001:db8:1::10]:5353 [2001:db8:2::20]:53",
             v2: .exceedsResponderPolicy, v3: "udp 2001:db8:1::/48 <-> 2001:db8:2::/48 port 53"),
    Scenario(name: "packet outside what the responder protects (both fail, correctly)",
             initiator: "ip 198.18.1.0/24 198.18.2.0/24", responder: "tcp 198.18.2.0/24 eq 443 198.18.1.0/24",
             packet: "udp 198.18.1.10:4000 198.18.2.20:53",
             v2: .exceedsResponderPolicy, v3: nil),
]

@Suite struct V2VersusV3ScenarioTests {
    @Test(arguments: scenarios)
    func scenario(_ s: Scenario) throws {
        let packet = try Packet(parsing: s.packet)
        let initiator = try #require(try ACLParser.parseSelector(s.initiator).proxy(as: .initiator, family: packet.family))
        let responder = try #require(try ACLParser.parseSelector(s.responder).proxy(as: .responder, family: packet.family))

        switch HalfProxyMerge.merge(initiator: initiator, responder: responder, packet: packet) {
        case .success: #expect(s.v2 == nil, "v2 should fail with \(String(describing: s.v2))")
        case .failure(let why): #expect(s.v2 == why)
        }

        let intersection = initiator.intersection(responder)
        let usable = intersection.flatMap { $0.contains(packet) ? $0 : nil }
        #expect(usable?.description == s.v3)
        if let usable {
            #expect(usable.isSubset(of: initiator) && usable.isSubset(of: responder))
        }
    }
}
