import Foundation
import Logging
import NIOCore
import Testing
import TEDConfig
import TEDEngine
import TEDModel
import TEDWire
@testable import TEDDaemon

/// `ted status` and the metrics endpoint show the same counts: both render one snapshot
/// (`DiscoveryCounts`). A scripted run on loopback leaves something in every family.
@Suite struct StatusMetricsAgreementTests {
    @Test func statusAndMetricsAgreeAfterAScriptedRun() async throws {
        let (initiator, responder) = try await LoopbackDiscoveryTests().nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let target = (IPAddress("127.0.0.2")!, responder.port)
        // A discovery, a cache hit, a failure (nobody answers on port 9), a flow the
        // responder's policy does not cover, and garbage at both ends.
        _ = await initiator.discover(try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443"), to: target)
        _ = await initiator.discover(try Packet(parsing: "tcp 198.18.1.11:40000 198.18.2.21:443"), to: target)
        _ = await initiator.discover(try Packet(parsing: "udp 198.18.1.10:1 198.18.3.30:53"), to: (IPAddress("127.0.0.2")!, 9))
        _ = await initiator.discover(try Packet(parsing: "udp 198.18.1.10:1 198.18.2.30:53"), to: target)
        for node in [initiator, responder] {
            node.inject(ByteBuffer(bytes: [UInt8](repeating: 0xff, count: 40)), from: IPAddress("127.0.0.3")!, port: 500)
        }
        for node in [initiator, responder] {
            let status = try #require(try JSONSerialization.jsonObject(with: Data(
                await ControlProtocol.answer("status", node: node, identity: Identity(address: IPAddress("127.0.0.1")!, port: 500),
                                             plugins: []).utf8)) as? [String: Any])
            let metrics = node.metrics
            func sum(_ name: String) -> Double {
                metrics.prometheusText().split(separator: "\n").filter { !$0.hasPrefix("#") && $0.split(separator: "{")[0].split(separator: " ")[0] == name }
                    .reduce(0) { $0 + (Double($1.split(separator: " ").last!) ?? 0) }
            }
            func total(_ object: Any?) -> Double { Double((object as? [String: Int])?.values.reduce(0, +) ?? 0) }
            if let i = status["initiator"] as? [String: Any] {
                let pairs: [(String, String)] = [("probes_sent", "ted_probes_sent_total"), ("retransmits", "ted_probes_retransmitted_total"),
                                                 ("challenges_answered", "ted_challenges_answered_total"),
                                                 ("responses_accepted", "ted_responses_accepted_total"), ("discoveries", "ted_discoveries_total"),
                                                 ("rejects", "ted_rejects_total")]
                for (key, metric) in pairs { #expect(Double(i[key] as? Int ?? -1) == sum(metric), "\(key) vs \(metric)") }
                let failures = try #require(i["failures"] as? [String: Int])
                #expect(!failures.isEmpty && total(failures) == sum("ted_failures_total"))
                for (reason, count) in failures { #expect(Double(count) == metrics.value("ted_failures_total", [("reason", reason)])) }
                #expect(total(i["ignored"]) == sum("ted_responses_ignored_total"))
                #expect(Double((i["pending"] as? [Any])?.count ?? -1) == sum("ted_pending_discoveries"))
                #expect(Double((i["cache"] as? [Any])?.count ?? -1) == sum("ted_cache_entries"))
                #expect(sum("ted_probes_sent_total") == 3 && sum("ted_rejects_total") == 1)
            }
            if let r = status["responder"] as? [String: Any] {
                let pairs: [(String, String)] = [("received", "ted_responder_received_total"), ("replies", "ted_responder_replies_total"),
                                                 ("challenges", "ted_responder_challenges_total"),
                                                 ("cookies_accepted", "ted_responder_cookies_accepted_total")]
                for (key, metric) in pairs { #expect(Double(r[key] as? Int ?? -1) == sum(metric), "\(key) vs \(metric)") }
                #expect(total(r["drops"]) == sum("ted_responder_drops_total"))
                #expect(sum("ted_responder_replies_total") >= 1 && sum("ted_responder_drops_total") >= 2, "\(r)")
            }
            let socket = try #require(status["socket"] as? [String: Any])
            #expect(total(socket["send_errors"]) == sum("ted_send_errors_total"))
            #expect(Double(socket["unsendable"] as? Int ?? -1) == sum("ted_unsendable_total"))
            #expect(Double(socket["receive_overflows"] as? Int ?? -1) == sum("ted_receive_overflows_total"))
        }
    }
}
