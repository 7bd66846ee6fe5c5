import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TEDConfig
import TEDModel
import TEDWire
@testable import TEDDaemon

/// What an operator reads of challenges: every one is counted, and the first toward each
/// identity in a minute is logged at info, however many follow.
@Suite struct ChallengeLogTests {
    /// Log lines, kept.
    struct RecordingHandler: LogHandler {
        let lines: NIOLockedValueBox<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            lines.withLockedValue { $0.append((event.level, "\(event.message)", metadata.merging(event.metadata ?? [:]) { $1 })) }
        }
    }

    func probe(identity: String, cookie: Cookie) throws -> ByteBuffer {
        TEDCodec.encode(.probe(Probe(initiatorCookie: cookie, identity: Identity(address: IPAddress(identity)!, port: 9500),
                                     summary: try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443"))))
    }

    @Test func theFirstChallengeTowardAnIdentityInAMinuteIsLoggedAtInfo() async throws {
        let lines = NIOLockedValueBox<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
        let logger = Logger(label: "test") { _ in RecordingHandler(lines: lines) }
        let config = try ConfigurationLoader.parse(LoopbackDiscoveryTests.responderYAML + "\nresponder: { rate: 1, burst: 1 }",
                                                   path: "test.yaml")
        let responder = try await TEDNode.start(configuration: config, roles: .responder,
                                                bind: Endpoint(address: config.identity, port: 0), logger: logger)
        defer { Task { await responder.stop() } }
        // One source /24: its one token answers the first probe, the limit refuses the rest.
        let identities = ["127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.1", "127.0.0.3", "127.0.0.3"]
        for (index, identity) in identities.enumerated() {
            responder.inject(try probe(identity: identity, cookie: UInt64(index + 1)), from: IPAddress("127.0.0.9")!, port: 500)
        }
        #expect(responder.metrics.value("ted_responder_replies_total") == 1)
        #expect(responder.metrics.value("ted_responder_challenges_total") == 5)
        let logged = lines.withLockedValue { $0 }.filter { $0.message.contains("challenge") }
        #expect(logged.map(\.level) == [.info, .info])
        #expect(logged.map { $0.metadata["ted.identity"]?.description } == ["127.0.0.1", "127.0.0.3"])
    }

    /// The interval is per key: another key, or the same one a whole interval later, is logged again.
    @Test func theLimiterAllowsAKeyOncePerInterval() {
        let limiter = LogLimiter(interval: .seconds(60))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(limiter.allow("a", now: start) && limiter.allow("b", now: start))
        #expect(!limiter.allow("a", now: start + .seconds(59)))
        #expect(limiter.allow("a", now: start + .seconds(60)))
    }

    /// A flood naming a new key each time is held to `linesPerInterval` lines an interval.
    @Test func theLimiterCapsLinesWhateverTheKeys() {
        let limiter = LogLimiter(interval: .seconds(60), linesPerInterval: 16)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect((0..<5000).filter { limiter.allow("identity-\($0)", now: start + .milliseconds(Int64($0))) }.count == 16)
        #expect(limiter.allow("identity-new", now: start + .seconds(60)))
    }
}
