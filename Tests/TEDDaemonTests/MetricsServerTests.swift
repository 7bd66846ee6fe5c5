import NIOCore
import NIOPosix
import Testing
@testable import TEDDaemon

/// The scrape endpoint on real sockets: bounded in connections and in each one's lifetime,
/// and never kept out by idle clients.
@Suite(.timeLimit(.minutes(1))) struct MetricsServerTests {
    /// A metrics server on 127.0.0.1 and a free port, on a loop of its own (so connections
    /// are admitted in the order they arrive), stopped after `body`. The lifetime is long
    /// unless a test is about it, so only the cap closes a connection.
    static func withServer(cap: Int = MetricsServer.maxConnections, lifetime: TimeAmount = .seconds(60),
                           _ body: (_ port: Int, _ guard: ConnectionGuard) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connectionGuard = ConnectionGuard(maxConnections: cap, lifetime: lifetime, checkCredentials: false)
        var failure: (any Error)?
        do {
            let server = try await MetricsServer.bind(group: group, host: "127.0.0.1", port: 0, registry: MetricsRegistry(),
                                                      guard: connectionGuard)
            do {
                try await body(try #require(server.localAddress?.port), connectionGuard)
            } catch {
                failure = error
            }
            try? await server.close()
        } catch {
            failure = error
        }
        try await group.shutdownGracefully()
        if let failure { throw failure }
    }

    static let scrape = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"

    static func headerEnds(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).contains("\r\n\r\n")
    }

    /// The cap's worth of idle clients, and 50 more after them, do not keep out a scrape:
    /// it is answered at once, and the oldest idle connections were closed to make room.
    @Test func aScrapeIsAnsweredWhileIdleConnectionsHoldEverySlot() async throws {
        try await Self.withServer { port, connectionGuard in
            let cap = connectionGuard.maxConnections
            var idle: [LocalClient] = []
            for _ in 0..<(cap + 50) { idle.append(try LocalClient.tcp(port: port)) }
            let start = ContinuousClock.now
            let scrape = try LocalClient.tcp(port: port)
            try scrape.send(Self.scrape)
            let reply = await scrape.read(within: .seconds(2), until: Self.headerEnds)
            #expect(reply.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(ContinuousClock.now - start < .seconds(3))
            // 50 idle newcomers and the scrape each closed the oldest; the newest stay.
            #expect(await eventually { idle.prefix(51).allClosed })
            #expect(idle.suffix(cap - 1).allOpenAndQuiet)
            #expect(connectionGuard.current == cap)
        }
    }

    @Test func theOldestConnectionIsClosedToMakeRoom() async throws {
        try await Self.withServer(cap: 4) { port, connectionGuard in
            var clients: [LocalClient] = []
            for count in 1...4 {
                clients.append(try LocalClient.tcp(port: port))
                #expect(await eventually { connectionGuard.current == count })
            }
            clients.append(try LocalClient.tcp(port: port))
            #expect(await eventually { connectionGuard.evicted == 1 })
            #expect(await eventually { clients[0].isClosed })
            #expect(clients.dropFirst().allOpenAndQuiet)
            #expect(connectionGuard.current == 4)
            #expect(connectionGuard.refused == 0)
        }
    }

    /// Answered on a kept-alive connection, a client is idle again and goes first.
    @Test func aScrapedConnectionKeptAliveIsIdleAgain() async throws {
        try await Self.withServer(cap: 2) { port, connectionGuard in
            let scraped = try LocalClient.tcp(port: port)
            try scraped.send(Self.scrape)
            #expect(await scraped.read(within: .seconds(2), until: Self.headerEnds).text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            let idle = try LocalClient.tcp(port: port)
            #expect(await eventually { connectionGuard.current == 2 })
            let newcomer = try LocalClient.tcp(port: port)
            #expect(await eventually { scraped.isClosed })
            #expect(idle.isOpenAndQuiet && newcomer.isOpenAndQuiet)
        }
    }

    @Test func anIdleConnectionIsClosedAtTheEndOfItsLifetime() async throws {
        try await Self.withServer(cap: 4, lifetime: .milliseconds(200)) { port, connectionGuard in
            let client = try LocalClient.tcp(port: port)
            #expect(await eventually(within: .seconds(3)) { client.isClosed })
            #expect(await eventually { connectionGuard.current == 0 })
            #expect(connectionGuard.evicted == 0)
        }
    }
}
