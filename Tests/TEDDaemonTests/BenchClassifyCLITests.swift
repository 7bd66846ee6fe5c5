import Foundation
import Testing

/// `ted bench classify`, what an operator runs on their own policy; its JSON keys are read by other tools.
@Suite(.serialized) struct BenchClassifyCLITests {
    static let classBench2k = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Benchmarks/classbench/acl1_2k.txt").path

    @Test func classBenchJSONKeepsItsKeysAndAgrees() throws {
        let result = try CLITests.run(["bench", "classify", "--classbench", Self.classBench2k,
                                       "--trace", "5000", "--scan-sample", "500", "--json"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["rules", "build_seconds", "resident_bytes", "compiled_lookups_per_second",
                                     "scan_lookups_per_second", "agree"])
        #expect(object["rules"] as? Int == 2572)
        #expect(object["agree"] as? Bool == true)
    }

    @Test func measuresTheConfigurationsOwnPolicy() throws {
        let config = try CLITests.temporaryFile("bench.yaml", """
            identity: 198.51.100.1
            policy:
              - permit tcp 198.18.1.0/24 eq 443 any
              - deny udp 198.18.1.0/25 198.18.0.0/16
              - permit ip 2001:db8:1::/48 any
              - permit ip 198.18.0.0/16 any

            """)
        let result = try CLITests.run(["bench", "classify", "--config", config, "--trace", "5000", "--scan-sample", "5000"],
                                      timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("configuration \(config): 4 rules"))
        #expect(result.stdout.contains("compiled vs scan on the first 5000: 0 differ"))
        #expect(try CLITests.run(["bench", "classify", "--config", config, "--classbench", Self.classBench2k]).status == 2)
    }

    @Test func theBenchmarksOfTedItselfAreNotInTheShippedBinary() throws {
        for moved in ["responder", "wire", "probes", "shares", "echo"] {
            #expect(try CLITests.run(["bench", moved]).status == 2)
        }
    }
}
