import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TEDConfig
import TEDEngine
import TEDLinux
import TEDModel
import TEDWire
@testable import TEDDaemon

/// Two nodes on 127.0.0.x over real UDP sockets.
@Suite struct LoopbackDiscoveryTests {
    static let logger = quietLogger

    static func config(_ yaml: String) throws -> Configuration {
        try ConfigurationLoader.parse(yaml, path: "test.yaml")
    }

    static let initiatorYAML = """
        identity: 127.0.0.1
        policy:
          - deny tcp 198.18.1.0/24 any eq 22
          - permit ip 198.18.1.0/24 198.18.0.0/16
        discovery: { retries: 2, timeout: 100ms }
        """
    static let responderYAML = """
        identity: 127.0.0.2
        policy:
          - permit tcp 198.18.2.0/24 eq 443 198.18.0.0/16
        """

    /// An initiator (of `initiatorYAML`, reporting to `events`) and a responder on loopback.
    func nodes(initiatorYAML: String = Self.initiatorYAML,
               events: DiscoveryEvents = DiscoveryEvents()) async throws -> (TEDNode, TEDNode) {
        let responderConfig = try Self.config(Self.responderYAML)
        let responder = try await TEDNode.start(configuration: responderConfig, roles: .responder,
                                                bind: Endpoint(address: responderConfig.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger)
        let initiatorConfig = try Self.config(initiatorYAML)
        let initiator = try await TEDNode.start(configuration: initiatorConfig, roles: .initiator,
                                                bind: Endpoint(address: initiatorConfig.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger, events: events)
        return (initiator, responder)
    }

    @Test func discoversNarrowedIntersectionThenServesFromCache() async throws {
        let (initiator, responder) = try await nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let target = (IPAddress("127.0.0.2")!, responder.port)
        let packet = try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443")
        let first = await initiator.discover(packet, to: target)
        guard case .discovered(let d, let cached) = first else {
            Issue.record("expected a discovery, got \(first)")
            return
        }
        #expect(!cached)
        #expect(d.peer.address.description == "127.0.0.2" && d.peer.port == responder.port)
        #expect(d.intersection.description == "tcp 198.18.1.0/24 <-> 198.18.2.0/24 port 443")
        let second = await initiator.discover(try Packet(parsing: "tcp 198.18.1.11:40001 198.18.2.21:443"), to: target)
        guard case .discovered(_, true) = second else {
            Issue.record("expected a cached discovery, got \(second)")
            return
        }
        #expect(initiator.metrics.value("ted_probes_sent_total") == 1)
        #expect(initiator.metrics.value("ted_discoveries_total") == 1)
    }

    /// What the engines report runs after their lock is released: an event handler may call
    /// the node again (here it forgets the discovery at once, so the next request probes).
    @Test(.timeLimit(.minutes(1))) func anEventMayCallTheNodeAgain() async throws {
        let node = NIOLockedValueBox<TEDNode?>(nil)
        let (initiator, responder) = try await nodes(events: DiscoveryEvents(discovered: { discovery in
            node.withLockedValue { $0 }?.forget(peer: discovery.peer.address)
        }))
        node.withLockedValue { $0 = initiator }
        defer { Task { await initiator.stop(); await responder.stop() } }
        let target = (IPAddress("127.0.0.2")!, responder.port)
        let packet = try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443")
        for _ in 0..<2 {
            guard case .discovered(_, false) = await initiator.discover(packet, to: target) else {
                Issue.record("expected a fresh discovery")
                return
            }
        }
        #expect(initiator.metrics.value("ted_probes_sent_total") == 2)
    }

    /// A request that joins a discovery the data plane started (no one waiting on it yet)
    /// gets that discovery's outcome.
    @Test(.timeLimit(.minutes(1))) func aRequestJoiningATriggeredDiscoveryGetsItsOutcome() async throws {
        // One probe that waits long: however slow the machine, the discovery is still
        // pending when the request joins it.
        let patient = Self.initiatorYAML.replacingOccurrences(of: "discovery: { retries: 2, timeout: 100ms }",
                                                              with: "discovery: { retries: 0, timeout: 30s }")
        try #require(patient.contains("timeout: 30s"))
        let (initiator, responder) = try await nodes(initiatorYAML: patient)
        defer { Task { await initiator.stop(); await responder.stop() } }
        let target = (IPAddress("127.0.0.2")!, responder.port)
        // The responder answers only once the request below has joined the discovery.
        let release = NIOLockedValueBox(false)
        let busy = await Self.holdEngines(of: responder) { release.withLockedValue { $0 } }
        initiator.trigger(try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443"), to: target)
        let request = Task { await initiator.discover(try Packet(parsing: "tcp 198.18.1.11:5 198.18.2.20:443"), to: target) }
        while await initiator.snapshot().initiator?.counters.joins != 1 { try await Task.sleep(for: .milliseconds(1)) }
        release.withLockedValue { $0 = true }
        try await busy.get()
        let joined = try await request.value
        guard case .discovered(let d, false) = joined else {
            Issue.record("expected the triggered discovery's outcome, got \(joined)")
            return
        }
        #expect(d.packet.description == "tcp 198.18.1.10:40000 198.18.2.20:443")
        #expect(initiator.metrics.value("ted_probes_sent_total") == 1)
    }

    /// A UDP client on 127.0.0.1, its port, and spec vector 1 with its identity pointed at it.
    static func probingClient() async throws
        -> (NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>, UInt16, [UInt8]) {
        let client = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).flatMapThrowing { channel in
                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
            }.get()
        let port = UInt16(try #require(client.channel.localAddress?.port))
        var probe = try #require(hexBytes(SpecVectors.probeV4TCP))
        // Identity ID payload body at offset 56: type, protocol, port (58-59), address (60-63).
        probe.replaceSubrange(58...63, with: [UInt8(port >> 8), UInt8(port & 0xff), 127, 0, 0, 1])
        return (client, port, probe)
    }

    /// Holds `node`'s engines on another thread, as a long batch would, until `released`
    /// (at most 20 s); returns once they are held.
    static func holdEngines(of node: TEDNode, until released: @escaping @Sendable () -> Bool) async -> EventLoopFuture<Void> {
        let held = NIOLockedValueBox(false)
        let done = NIOThreadPool.singleton.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.next()) {
            node.withCore { _ in
                held.withLockedValue { $0 = true }
                for _ in 0..<20_000 where !released() { usleep(1_000) }
            }
        }
        while !held.withLockedValue({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
        return done
    }

    /// Intercepted datagrams are handled on the threads that bring them, never queued: all
    /// of those injected from several threads while the socket's reader also holds the
    /// engines are handled, each once.
    @Test func injectedDatagramsAreEachHandledOnce() async throws {
        let (initiator, responder) = try await nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let until = ContinuousClock.now + .milliseconds(100)
        let busy = await Self.holdEngines(of: responder) { ContinuousClock.now >= until }
        let garbage = ByteBuffer(bytes: [1, 2, 3])
        let passedOn = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await NIOThreadPool.singleton.runIfActive {
                        for _ in 0..<500 {
                            responder.inject(garbage, from: IPAddress("127.0.0.9")!, port: 9) {
                                passedOn.withLockedValue { $0 += 1 }
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await busy.get()
        #expect(responder.metrics.value("ted_responder_received_total") == 2000)
        #expect(responder.metrics.value("ted_rejects_total", [("reason", "tooShort")]) == 2000)
        // Garbage is not a probe to pass on.
        #expect(passedOn.withLockedValue { $0 } == 0)
    }

    /// A responder whose source bucket is spent challenges the next probe (exchange 242,
    /// which the node hands to its initiator); the initiator echoes the cookie at once and
    /// the echo is answered from the proven identity's bucket.
    @Test(.timeLimit(.minutes(1))) func aRateLimitedDiscoveryIsChallengedAndStillDiscovered() async throws {
        let responderConfig = try Self.config(Self.responderYAML + "\nresponder: { rate: 1, burst: 1 }")
        let responder = try await TEDNode.start(configuration: responderConfig, roles: .responder,
                                                bind: Endpoint(address: responderConfig.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger)
        let initiatorConfig = try Self.config(Self.initiatorYAML)
        // Both roles, as the daemon runs: the challenge must reach the initiator, not the responder.
        let initiator = try await TEDNode.start(configuration: initiatorConfig, roles: .both,
                                                bind: Endpoint(address: initiatorConfig.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger)
        defer { Task { await initiator.stop(); await responder.stop() } }
        let target = (IPAddress("127.0.0.2")!, responder.port)
        let packet = try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443")
        guard case .discovered = await initiator.discover(packet, to: target) else {
            Issue.record("the first discovery failed")
            return
        }
        initiator.forget(peer: IPAddress("127.0.0.2")!)
        // Spend the token of the initiator's source a slow machine may have refilled since
        // (1 a second): the spec's probe from that source, right before the discovery.
        responder.inject(ByteBuffer(bytes: try #require(hexBytes(SpecVectors.probeV4TCP))), from: IPAddress("127.0.0.1")!, port: 40000)
        let second = await initiator.discover(packet, to: target)
        guard case .discovered(let discovery, false) = second else {
            Issue.record("expected a fresh discovery, got \(second)")
            return
        }
        #expect(discovery.attempts == 1)
        // The spec's probe is challenged, or answered when a slow machine refilled the token
        // before it came; either way the initiator's probe is challenged and its echo answered.
        let challenges = responder.metrics.value("ted_responder_challenges_total")
        #expect(challenges >= 1 && challenges + responder.metrics.value("ted_responder_replies_total") == 4)
        #expect(responder.metrics.value("ted_responder_cookies_accepted_total") == 1)
        #expect(initiator.metrics.value("ted_probes_retransmitted_total") == 0)
        #expect(initiator.metrics.value("ted_probes_sent_total") == 2)
        #expect(initiator.metrics.value("ted_challenges_answered_total") == 1)
    }

    /// An intercepted probe the responder does not cover goes on (`unanswered`); one it
    /// covers is answered through the TED socket and stops here.
    @Test func injectedProbePassesOnOnlyWhenUnanswered() async throws {
        let covering = try Self.config(Self.responderYAML)
        let elsewhere = try Self.config("""
            identity: 127.0.0.2
            policy:
              - permit tcp 203.0.113.0/24 198.18.0.0/16
            """)
        let (client, clientPort, probe) = try await Self.probingClient()
        for (config, answers) in [(elsewhere, false), (covering, true)] {
            let node = try await TEDNode.start(configuration: config, roles: .responder,
                                               bind: Endpoint(address: config.identity, port: 0), logger: Self.logger)
            let passedOn = NIOLockedValueBox(0)
            node.inject(ByteBuffer(bytes: probe), from: IPAddress("127.0.0.1")!, port: clientPort) {
                passedOn.withLockedValue { $0 += 1 }
            }
            await node.stop()
            #expect(passedOn.withLockedValue { $0 } == (answers ? 0 : 1))
            #expect(node.metrics.value("ted_responder_replies_total") == (answers ? 1 : 0))
        }
        try await client.executeThenClose { inbound, _ in
            var iterator = inbound.makeAsyncIterator()
            let reply = try #require(try await iterator.next())
            guard case .response(let response) = try TEDCodec.decode(reply.data) else { Issue.record("not a response"); return }
            #expect(response.initiatorCookie == 0x0102030405060708)
        }
    }

    /// `capture` writes what a node sends and receives as pcap that our reader (and tshark) reads back.
    @Test func captureRecordsProbeAndResponse() async throws {
        let path = "/tmp/ted-capture-\(getpid()).pcap"
        var config = try Self.config(Self.initiatorYAML)
        config.capture = path
        let responderConfig = try Self.config(Self.responderYAML)
        let responder = try await TEDNode.start(configuration: responderConfig, roles: .responder,
                                                bind: Endpoint(address: responderConfig.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger)
        let initiator = try await TEDNode.start(configuration: config, roles: .initiator,
                                                bind: Endpoint(address: config.identity, port: 0),
                                                advertiseBoundPort: true, logger: Self.logger)
        let responderPort = responder.port
        _ = await initiator.discover(try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:443"),
                                     to: (IPAddress("127.0.0.2")!, responderPort))
        await initiator.stop()
        await responder.stop()
        // A loaded machine may make the initiator retransmit before the answer comes: then
        // the capture holds every probe and every answer, in order, probe first.
        let datagrams = try Pcap.datagrams(in: try #require(readFileBytes(path)), port: responderPort)
        let kinds = datagrams.map { datagram -> String in
            switch try? TEDCodec.decode(ByteBuffer(bytes: datagram.payload)) {
            case .probe: "probe"
            case .response: "response"
            default: "other"
            }
        }
        #expect(kinds.first == "probe" && kinds.contains("response") && !kinds.contains("other"), "\(kinds)")
        for (datagram, kind) in zip(datagrams, kinds) {
            #expect(kind == "probe" ? datagram.destination.description == "127.0.0.2" : datagram.source.description == "127.0.0.2")
        }
    }

    @Test func silentResponderTimesOutAfterEveryRetry() async throws {
        let (initiator, responder) = try await nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let packet = try Packet(parsing: "udp 198.18.1.10:4000 198.18.2.20:53")
        let outcome = await initiator.discover(packet, to: (IPAddress("127.0.0.2")!, responder.port))
        guard case .failed(let failure, false) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(failure.reason == .timeout && failure.attempts == 3)
        #expect(responder.metrics.value("ted_responder_drops_total", [("reason", "no_match")]) == 3)
        #expect(initiator.metrics.value("ted_failures_total", [("reason", "timeout")]) == 1)
    }

    /// What the held-packet driver relies on: packets of new flows to one dead address,
    /// each triggered (held or dropped over a bound), send one probe; once its discovery
    /// failed, the node tells those flows known to fail, and only those.
    @Test(.timeLimit(.minutes(1))) func aFloodOfTriggersSendsOneProbeThenItsFlowsAreKnownToFail() async throws {
        let (initiator, responder) = try await nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let flood = try (0..<50).map { try Packet(parsing: "tcp 198.18.1.10:\(40000 + $0) 198.18.2.99:443") }
        for packet in flood { initiator.trigger(packet) }
        #expect(initiator.knownToFail(flood).isEmpty, "pending is not failing")
        let outcome = await initiator.discover(flood[0])
        guard case .failed(let failure, false) = outcome else {
            Issue.record("expected the flood's discovery to fail, got \(outcome)")
            return
        }
        #expect(failure.reason == .timeout)
        #expect(initiator.metrics.value("ted_probes_sent_total") == 1)
        let otherService = try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.99:80")
        let otherSource = try Packet(parsing: "tcp 198.18.1.11:40000 198.18.2.99:443")
        let later = try Packet(parsing: "tcp 198.18.1.10:50000 198.18.2.99:443")
        #expect(initiator.knownToFail(flood + [otherService, otherSource, later]) == Set(flood + [later]))
        #expect(initiator.metrics.value("ted_probes_sent_total") == 1, "asking sends nothing")
    }

    @Test func denyAndUnprotectedPacketsNeedNoDiscovery() async throws {
        let (initiator, responder) = try await nodes()
        defer { Task { await initiator.stop(); await responder.stop() } }
        let denied = await initiator.discover(try Packet(parsing: "tcp 198.18.1.10:40000 198.18.2.20:22"))
        guard case .notProtected = denied else { Issue.record("deny must not be discovered: \(denied)"); return }
        let outside = await initiator.discover(try Packet(parsing: "tcp 203.0.113.1:1 203.0.113.2:2"))
        guard case .notProtected = outside else { Issue.record("unprotected: \(outside)"); return }
        #expect(initiator.metrics.value("ted_probes_sent_total") == 0)
    }

    /// The spec's probe vector, replayed at a responder whose policy covers it, is answered;
    /// garbage and the response vector are dropped and counted, and the responder still answers.
    @Test func replaysSpecVectorsAndGarbage() async throws {
        let config = try Self.config("""
            identity: 127.0.0.2
            policy:
              - permit tcp 198.18.2.0/24 eq 443 198.18.0.0/16
            """)
        let responder = try await TEDNode.start(configuration: config, roles: .responder,
                                                bind: Endpoint(address: config.identity, port: 0), logger: Self.logger)
        defer { Task { await responder.stop() } }
        let (client, _, probe) = try await Self.probingClient()
        let destination = try SocketAddress(ipAddress: "127.0.0.2", port: Int(responder.port))
        try await client.executeThenClose { inbound, outbound in
            // A datagram longer than a read slot arrives cut to the slot, still too long.
            let oversize = [UInt8](repeating: 0, count: UDPSocket.ReceiveBatch.slotSize + 700)
            for garbage in [[UInt8](repeating: 0xff, count: 40), [], oversize, try #require(hexBytes(SpecVectors.responseV4))] + [probe] {
                try await outbound.write(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(bytes: garbage)))
            }
            var iterator = inbound.makeAsyncIterator()
            let reply = try #require(try await iterator.next())
            let message = try TEDCodec.decode(reply.data)
            guard case .response(let response) = message else { Issue.record("not a response"); return }
            #expect(response.initiatorCookie == 0x0102030405060708)
            #expect(response.entries.first?.description == "tcp 198.18.0.0/16 <-> 198.18.2.0/24 port 443")
        }
        #expect(responder.metrics.value("ted_responder_drops_total", [("reason", "rejected")]) >= 3)
        #expect(responder.metrics.value("ted_rejects_total", [("reason", "tooLong")]) == 1)
        #expect(responder.metrics.value("ted_responder_drops_total", [("reason", "not_a_probe")]) == 1)
        #expect(responder.metrics.value("ted_responder_replies_total") == 1)
    }
}

enum SpecVectors {
    static let probeV4TCP = "010203040506070800000000000000000d10f0000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401000000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214"
    static let responseV4 = "010203040506070811121314151617180d10f1000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f100000c011101f4c633640200000024030401000600000001bb01bb0000ffffc6120200ffffff00c6120000ffff0000"
}

func hexBytes(_ hex: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    var iterator = hex.makeIterator()
    while let high = iterator.next() {
        guard let low = iterator.next(), let value = UInt8(String([high, low]), radix: 16) else { return nil }
        bytes.append(value)
    }
    return bytes
}
