import Testing
import TEDEngine
import TEDModel
@testable import TEDConfig

@Suite struct ConfigurationLoaderTests {
    static let full = """
        identity: 198.51.100.1
        listen: 0.0.0.0:500
        advertise-port: 1500
        probe-port: 500
        policy:
          - remark to site B
          - deny tcp 198.18.1.0/24 198.18.2.0/24 eq 22
          - permit ip 198.18.1.0/24 198.18.0.0/16
        peers: [198.51.100.0/24, 2001:db8:ffff::/48]
        discovery:
          retries: 2
          timeout: 250ms
          cache-ttl: 60s
          negative-ttl: 5
          max-pending: 10
          max-cache: 20
          send-proxy-address: false
        responder:
          enabled: true
          rate: 50
          burst: 100
          global-rate: 1000
          global-burst: 2000
          max-sources: 128
          offer-all: false
        dataplane:
          traps: true
          intercept: true
          intercept-port: 1501
          acquire-expires: 3
        ike:
          vici: /run/gwA.vici
          proposals: [aes128-sha256-modp2048]
          esp-proposals: [aes128-sha256]
          psk: correct horse battery staple
        control-socket: /run/ted-a.sock
        metrics: 127.0.0.1:9500
        """

    @Test func loadsEveryKey() throws {
        let c = try ConfigurationLoader.parse(Self.full, path: "a.yaml")
        #expect(c.identity.description == "198.51.100.1")
        #expect(c.listen.description == "0.0.0.0:500")
        #expect(c.advertisePort == 1500)
        #expect(c.policy.rules.count == 2)
        #expect(c.policy.rules[1].line == 8)
        #expect(c.peers.count == 2)
        #expect(c.discovery.retries == 2 && c.discovery.timeout == 0.25 && c.discovery.cacheTTL == 60)
        #expect(!c.discovery.sendProxyAddress)
        #expect(c.responder.rate == 50 && c.responder.maxSources == 128 && !c.responder.offerAll)
        #expect(c.dataplane.traps && c.dataplane.interceptPort == 1501 && c.dataplane.acquireExpires == 3)
        #expect(c.ike?.vici == "/run/gwA.vici")
        #expect(c.ike?.authentication == .psk("correct horse battery staple"))
        #expect(c.controlSocket == "/run/ted-a.sock")
        #expect(c.metrics?.port == 9500)
    }

    /// The configuration's defaults are the engine's; `EngineSettings.swift` lists where the daemon differs.
    @Test func defaultsAreTheEngines() {
        let d = DiscoveryOptions(), r = ResponderOptions()
        #expect(d.retries == DiscoverySettings.defaultRetries && d.entries == DiscoverySettings.defaultWantedEntries)
        #expect(d.maxPending == DiscoverySettings.defaultMaxPending && d.maxCache == DiscoverySettings.defaultMaxCache)
        #expect(d.cacheTTL == 300 && d.negativeTTL == 30 && d.timeout == 0.5)
        let engine = ResponderSettings(secret: CookieSecret(k0: 1, k1: 2))
        #expect(RateLimit(perSecond: r.rate, burst: r.burst) == engine.perSourceRate)
        #expect(RateLimit(perSecond: r.targetRate, burst: r.targetBurst) == engine.perTargetRate)
        #expect(RateLimit(perSecond: r.globalRate, burst: r.globalBurst) == engine.globalRate)
        #expect(r.maxSources == engine.maxTrackedSources)
    }

    @Test func minimalFileGetsDefaults() throws {
        let c = try ConfigurationLoader.parse("identity: 2001:db8:ffff::1\npolicy:\n  - permit ip 2001:db8:1::/48 any\n", path: "m.yaml")
        #expect(c.listen.description == "[::]:500")
        #expect(c.advertisePort == 500 && c.probePort == 500)
        #expect(c.ike == nil && c.metrics == nil)
        #expect(c.discovery == DiscoveryOptions())
    }

    /// Each bad file gives exactly one positioned error.
    @Test(arguments: [
        ("policy: [permit ip any any]\n", 1, 1, "missing 'identity'"),
        ("identity: 1.2.3\npolicy: [permit ip any any]\n", 1, 11, "'identity' must be an IPv4 or IPv6 address"),
        ("identity: 198.51.100.1\n", 1, 1, "missing 'policy'"),
        ("identity: 198.51.100.1\npolicy:\n  - permit ip any any\nbogus: 1\n", 4, 1, "unknown key 'bogus'"),
        ("identity: 198.51.100.1\npolicy:\n  - permit ip any any\n  - permit tcp any any eq nope\n", 4, 27, "invalid port 'nope'"),
        ("identity: 198.51.100.1\npolicy:\n  - \"permit tcp any any eq nope\"\n", 3, 28, "invalid port 'nope'"),
        ("identity: 198.51.100.1\npolicy:\n  - deny ip any any\n", 3, 3, "no permit entry"),
        ("identity: 198.51.100.1\nlisten: 1.2.3.4:99999\npolicy: [permit ip any any]\n", 2, 9, "'listen' must be address:port"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\ndiscovery:\n  retries: 11\n", 4, 12, "'retries' must be a whole number from 0 to 10"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\ndiscovery:\n  timeout: soon\n", 4, 12, "'timeout' must be a duration"),
        // Values the engine used to clamp silently are refused where they are written.
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nresponder:\n  rate: 2000000\n", 4, 9, "'rate' must be a whole number from 1 to 1000000"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nresponder: { global-burst: 50000000 }\n", 3, 28, "'global-burst' must be a whole number from 1 to 1000000"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\ndiscovery:\n  retries: 10\n  timeout: 60\n", 5, 12, "must stay within 3600 s"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\ndiscovery:\n  tmeout: 1\n", 4, 3, "unknown key 'tmeout'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nresponder:\n  enabled: maybe\n", 4, 12, "must be true or false"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers: [nope]\n", 3, 9, "a peer must be an address or prefix"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nhold:\n  per-source: 0\n", 4, 15, "'per-source' must be a whole number from 1 to 65536, not '0'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nhold: { per-source: 65537 }\n", 3, 21, "'per-source' must be a whole number from 1 to 65536"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nhold: { per-sources: 8 }\n", 3, 9, "unknown key 'per-sources'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - protects: [198.18.0.0/15]\n", 4, 5, "needs 'identity'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - { identity: 198.51.100.0/24, protects: [x] }\n", 4, 45, "'protects' must be an address or prefix"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - { identity: 198.51.100.0/24, protect: [] }\n", 4, 34, "unknown key 'protect'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nike:\n  vici: /x\n", 4, 3, "'ike' needs 'psk'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nike:\n  psk: short\n", 4, 8, "at least 8 bytes"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\nike:\n  psk: a long enough group key\n", 4, 8, "'psk' needs 'peers'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - { identity: 198.51.100.2, psk: short }\n", 4, 36, "at least 8 bytes"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - { identity: 198.51.100.0/255.255.0.255, psk: long enough }\n", 4, 17, "needs a prefix identity"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any]\npeers:\n  - { identity: 198.51.100.2, psk: long enough }\nike: { certificate: c, private-key: k, ca-certificate: a }\n", 5, 6, "remove the peers' 'psk'"),
        ("identity: 198.51.100.1\npolicy: [permit ip any any\n", 2, 26, "YAML"),
        ("identity: 198.51.100.1\nidentity: 198.51.100.2\npolicy: [permit ip any any]\n", 1, 1, "duplicate"),
        ("- just\n- a list\n", 1, 1, "must be a mapping"),
        ("", 1, 1, "empty"),
    ])
    func rejects(text: String, line: Int, column: Int, message: String) {
        #expect {
            _ = try ConfigurationLoader.parse(text, path: "bad.yaml")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            let ok = error.line == line && error.column == column && error.message.contains(message)
            if !ok { print("got: \(error)") }
            return ok && error.description.hasPrefix("bad.yaml:\(line):\(column): error: ")
        }
    }

    /// The hold's bound per source prefix: 32 unless set, from 1 to 65536 (the twins of the
    /// rejected 0 and 65537 above).
    @Test(arguments: [(nil, 32), ("1", 1), ("65536", 65_536)] as [(String?, Int)])
    func holdPerSourceIsRead(value: String?, expected: Int) throws {
        let hold = value.map { "hold: { per-flow: 4, per-source: \($0), packets: 256 }\n" } ?? ""
        let c = try ConfigurationLoader.parse("identity: 198.51.100.1\npolicy: [permit ip any any]\n" + hold, path: "h.yaml")
        #expect(c.hold.perSource == expected)
    }

    @Test func peersNameWhatEachMayProtect() throws {
        let c = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip any any]
            peers:
              - identity: 198.51.100.0/24
                protects: [198.18.0.0/15, 2001:db8::/32]
              - 203.0.113.7
            """, path: "peers.yaml")
        #expect(c.peers == [
            PeerAuthorization(identity: AddressPattern("198.51.100.0/24")!,
                              protects: [AddressPattern("198.18.0.0/15")!, AddressPattern("2001:db8::/32")!]),
            PeerAuthorization(identity: AddressPattern("203.0.113.7")!),
        ])
    }

    /// A peer's own key; with only such keys, `ike` needs no `psk`.
    @Test func peersMayHaveTheirOwnKeys() throws {
        let c = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip any any]
            peers:
              - { identity: 198.51.100.2, psk: "gwB's own key" }
              - 198.51.100.0/24
            ike: { vici: /x }
            """, path: "keys.yaml")
        #expect(c.peerKeys == [PeerKey(identity: AddressPattern("198.51.100.2")!, secret: "gwB's own key")])
        #expect(c.peers.count == 2)
        #expect(c.ike?.authentication == .peerKeys)
        let group = try ConfigurationLoader.parse("""
            identity: 198.51.100.1
            policy: [permit ip any any]
            peers: [{ identity: 198.51.100.2, psk: "gwB's own key" }]
            ike: { vici: /x, psk: "the group key" }
            """, path: "group.yaml")
        #expect(group.ike?.authentication == .psk("the group key") && group.peerKeys.count == 1)
    }

    @Test func missingFileIsAPositionedError() {
        #expect {
            _ = try ConfigurationLoader.load(path: "/nonexistent/ted.yaml")
        } throws: { ($0 as? ConfigError)?.description == "/nonexistent/ted.yaml:1:1: error: cannot read the file" }
    }
}

/// With traps on, larval states end after a few seconds unless the operator says otherwise.
@Suite struct AcquireExpiresDefaultTests {
    @Test func trapsBringAShortAcquireExpires() throws {
        let base = "identity: 198.51.100.1\npolicy: [permit ip any any]\n"
        #expect(try ConfigurationLoader.parse(base, path: "a.yaml").dataplane.effectiveAcquireExpires == nil)
        #expect(try ConfigurationLoader.parse(base + "dataplane: { traps: true }\n", path: "a.yaml")
            .dataplane.effectiveAcquireExpires == 3)
        #expect(try ConfigurationLoader.parse(base + "dataplane: { traps: true, acquire-expires: 10 }\n", path: "a.yaml")
            .dataplane.effectiveAcquireExpires == 10)
    }
}
