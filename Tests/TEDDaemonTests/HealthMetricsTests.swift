import Foundation
import NIOCore
import Testing
import TEDConfig
import TEDModel
import TEDWire
@testable import TEDDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The health signals beside the counts: build, process start, data-plane mode, held
/// packets, and charon in `ted status`.
@Suite struct HealthMetricsTests {
    /// The sample lines of `text` (no comments).
    static func samples(_ text: String) -> [String] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
    }

    @Test(arguments: DataplaneMode.allCases)
    func theModeIsOneSampleOfOne(_ mode: DataplaneMode) {
        let text = HealthMetrics.render(mode: mode, held: 7, version: "0.1.0", commit: "abc\"d", started: 1_765_158_644.5)
        #expect(Self.samples(text) == [
            #"ted_build_info{version="0.1.0",commit="abc\"d"} 1"#,
            "process_start_time_seconds 1765158644.5",
            "ted_dataplane_info{mode=\"\(mode.rawValue)\"} 1",
            "ted_held_packets 7",
        ])
        #expect(text.contains("# TYPE ted_dataplane_info gauge\n") && text.contains("# TYPE ted_held_packets gauge\n"))
    }

    /// A plugin reporting what the data plane would.
    struct Plugin: DaemonPlugin {
        var mode: DataplaneMode?
        var packets: Int?
        func start(node: TEDNode) async throws {}
        func stop() async {}
        func held() -> HeldStatus? { packets.map { HeldStatus(packets: $0, bytes: $0 * 100, flows: []) } }
        var dataplaneMode: DataplaneMode? { mode }
    }

    @Test func theSourceAsksThePluginsAtEachScrape() {
        #expect(HealthMetrics.source(plugins: [])().contains("ted_dataplane_info{mode=\"none\"} 1\n"))
        #expect(HealthMetrics.source(plugins: [])().contains("ted_held_packets 0\n"))
        let text = HealthMetrics.source(plugins: [Plugin(), Plugin(mode: .libipsec, packets: 3)])()
        #expect(text.contains("ted_dataplane_info{mode=\"libipsec\"} 1\n") && text.contains("ted_held_packets 3\n"))
    }

    @Test func theDataplanePluginSaysHowESPIsCarried() throws {
        let traps = try ConfigurationLoader.parse("identity: 127.0.0.1\npolicy: [permit ip 198.18.1.0/24 198.18.2.0/24]\ndataplane: { traps: true }\n",
                                                  path: "t.yaml")
        let plugin = try DataplanePlugin(configuration: traps, logger: quietLogger)
        #expect(plugin.dataplaneMode == .kernelESP)
        plugin.state.withLockedValue { $0.espInKernel = false }
        #expect(plugin.dataplaneMode == .libipsec)
        let intercept = try ConfigurationLoader.parse("identity: 127.0.0.1\npolicy: [permit ip 198.18.1.0/24 198.18.2.0/24]\ndataplane: { intercept: true }\n",
                                                      path: "t.yaml")
        #expect(try DataplanePlugin(configuration: intercept, logger: quietLogger).dataplaneMode == DataplaneMode.none)
    }

    @Test func theProcessStartIsTheKernels() throws {
        // The command name may hold spaces and parentheses; field 22 counts from after it.
        let stat = "4242 (ted (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 4 0 123456 1000 10"
        #expect(ProcessStart.startTicks(stat: stat) == 123_456)
        #expect(ProcessStart.startTicks(stat: "4242 (ted) S 1 2") == nil)
        #expect(ProcessStart.bootTime(stat: "cpu  1 2 3\nintr 5\nbtime 1765150000\nprocesses 9\n") == 1_765_150_000)
        let started = try #require(ProcessStart.fromProc())
        let now = ProcessStart.wallClock()
        #expect(started <= now + 1 && started > now - 86_400, "this test process started within a day: \(started) vs \(now)")
        #expect(ProcessStart.seconds == ProcessStart.seconds)
    }

    @Test func statusShowsCharonAndTheDataplane() {
        var report = StatusReport(identity: Identity(address: IPAddress("198.51.100.1")!, port: 500), initiator: nil, responder: nil,
                                  tunnels: [], now: .now())
        #expect(Array(report.lines.prefix(2)) == ["ted 198.51.100.1:500", "dataplane: none"])
        #expect(!report.lines.contains { $0.hasPrefix("charon:") })
        report.dataplane = .kernelESP
        report.charon = CharonStatus(connectedSince: 1_765_158_644.9, reconnects: 0)
        #expect(Array(report.lines.prefix(3)) == ["ted 198.51.100.1:500", "dataplane: kernel-esp",
                                                  "charon: connected since 2025-12-08T01:50:44Z"])
        #expect(report.json.rendered.contains(#""charon":{"connected":true,"since":"2025-12-08T01:50:44Z","reconnects":0}"#))
        report.charon = CharonStatus(connectedSince: nil, reconnects: 2)
        #expect(report.lines[2] == "charon: disconnected (2 reconnections)")
        #expect(report.json.rendered.contains(#""charon":{"connected":false,"since":null,"reconnects":2}"#))
        #expect(report.json.rendered.contains(#""dataplane":"kernel-esp""#))
    }
}
