import Foundation
import Testing

/// `ted classify --packets FILE`: one result per packet in input order, bad lines reported by number.
@Suite(.serialized) struct ClassifyPacketsCLITests {
    @Test func classifiesEveryLineAndReportsTheBadOnes() throws {
        let config = try CLITests.temporaryFile("packets.yaml", """
            identity: 198.51.100.1
            policy:
              - deny tcp 198.18.1.0/24 any eq 22
              - permit ip 198.18.1.0/24 198.18.0.0/16
            """)
        let packets = try CLITests.temporaryFile("packets.txt", """
            tcp 198.18.1.10:40000 198.18.2.20:22
            # a comment

            udp 198.18.1.10:5 198.18.2.20:53
            tcp 198.18.1.10:1 nonsense
            tcp 10.0.0.1:1 10.0.0.2:2
            """)
        let result = try CLITests.run(["classify", "--config", config, "--packets", packets, "--json"])
        #expect(result.status == 1)
        #expect(result.stdout == """
            {"line":1,"index":1,"action":"deny"}
            {"line":4,"index":2,"action":"permit"}
            {"line":6,"index":null,"action":null}

            """)
        #expect(result.stderr == "\(packets):5:19: error: invalid address 'nonsense'\n")

        let good = try CLITests.temporaryFile("good-packets.txt", "tcp 198.18.1.10:40000 198.18.2.20:22\n")
        let text = try CLITests.run(["classify", "--config", config, "--packets", good])
        #expect(text.status == 0)
        #expect(text.stdout == "line 1: tcp 198.18.1.10:40000 198.18.2.20:22: entry 1 deny: deny tcp 198.18.1.0/24 any eq 22\n")
        #expect(try CLITests.run(["classify", "--config", config]).status == 2)
        #expect(try CLITests.run(["classify", "--config", config, "--packets", good, "--packet", "tcp 1.1.1.1 2.2.2.2"]).status == 2)
    }
}
