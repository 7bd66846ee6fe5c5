import NIOCore
import Testing
@testable import TEDVici
@testable import TEDDaemon

/// The `load-conn` requests ted sends, key by key as charon reads them (strongSwan's vici
/// README and swanctl.conf(5)): with certificates, a discovered peer must prove exactly
/// its identity with a certificate of ted's CA, and so must any peer of the responder
/// connection; with a pre-shared key, no certificate is named.
@Suite struct ViciConnectionMessageTests {
    static let certificates = IKECertificates(certificate: Array("-----BEGIN CERTIFICATE-----\nours".utf8) + [0, 0xff],
                                              caCertificate: [0x30, 0x82, 0x01, 0x0a, 0x00, 0xca])

    func connection(remote: String, remoteID: String) -> IKEConnection {
        IKEConnection(name: "ted-test", localAddress: "198.51.100.1", remoteAddress: remote, proposals: ["aes128-sha256-modp2048"],
                      espProposals: ["aes128-sha256"], localID: "198.51.100.1", remoteID: remoteID,
                      children: [IKEChild(name: "ted-test", localTS: ["198.18.1.0/24"], remoteTS: ["198.18.2.0/24"])])
    }

    /// The raw items of a list at this level (certificates are binary).
    func byteList(_ message: ViciMessage, _ key: String) -> [[UInt8]]? {
        for case .list(let name, let items) in message.elements where name == key { return items }
        return nil
    }

    func rounds(_ message: ViciMessage) throws -> (local: ViciMessage, remote: ViciMessage) {
        let body = try #require(message.section("ted-test"))
        return (try #require(body.section("local-ted")), try #require(body.section("remote-ted")))
    }

    @Test func aDiscoveredPeerMustProveItsIdentityWithACertificateOfOurCA() throws {
        let message = ViciController.connectionMessage(connection(remote: "198.51.100.2", remoteID: "198.51.100.2"),
                                                       authentication: .pubkey(Self.certificates))
        let (local, remote) = try rounds(message)
        #expect(local["auth"] == "pubkey")
        #expect(local["id"] == "198.51.100.1")
        #expect(byteList(local, "certs") == [Self.certificates.certificate])
        #expect(byteList(local, "cacerts") == nil)
        #expect(remote["auth"] == "pubkey")
        #expect(remote["id"] == "198.51.100.2")
        #expect(byteList(remote, "cacerts") == [Self.certificates.caCertificate])
        #expect(byteList(remote, "certs") == nil)
        let body = try #require(message.section("ted-test"))
        #expect(body.list("remote_addrs") == ["198.51.100.2"])
        #expect(body.section("children")?.section("ted-test")?.list("remote_ts") == ["198.18.2.0/24"])
    }

    @Test func theResponderConnectionTakesAnyIdentityOfOurCAOnly() throws {
        let message = ViciController.connectionMessage(connection(remote: "%any", remoteID: "%any"),
                                                       authentication: .pubkey(Self.certificates))
        let (local, remote) = try rounds(message)
        #expect(local["auth"] == "pubkey" && byteList(local, "certs") == [Self.certificates.certificate])
        #expect(remote["auth"] == "pubkey")
        #expect(remote["id"] == "%any")
        #expect(byteList(remote, "cacerts") == [Self.certificates.caCertificate])
    }

    @Test func withAPreSharedKeyNoCertificateIsNamed() throws {
        let message = ViciController.connectionMessage(connection(remote: "198.51.100.2", remoteID: "198.51.100.2"),
                                                       authentication: .psk)
        let (local, remote) = try rounds(message)
        #expect(local["auth"] == "psk" && remote["auth"] == "psk")
        #expect(local["id"] == "198.51.100.1" && remote["id"] == "198.51.100.2")
        for round in [local, remote] {
            #expect(byteList(round, "certs") == nil && byteList(round, "cacerts") == nil)
        }
    }

    /// Binary certificate items survive the wire encoding byte for byte.
    @Test func certificateBytesRoundTripThroughTheCodec() throws {
        let message = ViciController.connectionMessage(connection(remote: "198.51.100.2", remoteID: "198.51.100.2"),
                                                       authentication: .pubkey(Self.certificates))
        var buffer = ByteBuffer()
        try message.encode(into: &buffer)
        let decoded = try ViciMessage.decode(&buffer)
        #expect(decoded == message)
    }

    @Test func loadCertCarriesTheDataAndItsFlag() {
        let message = ViciController.certificateMessage(Self.certificates.caCertificate, flag: "CA")
        #expect(message["type"] == "X509" && message["flag"] == "CA")
        #expect(message.elements.contains(.value("data", Self.certificates.caCertificate)))
    }
}
