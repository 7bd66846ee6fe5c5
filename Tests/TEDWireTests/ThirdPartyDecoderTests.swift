import Foundation
import Testing
import TEDModel
import TEDTestSupport
@testable import TEDWire

/// tshark's own ISAKMP dissector, and our Lua dissector, on a pcap of every spec vector.
@Suite(.serialized) struct ThirdPartyDecoderTests {
    static let ci = ProcessInfo.processInfo.environment["CI"] != nil

    static func tshark() throws -> String? {
        let path = "/usr/bin/tshark"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        try #require(!ci, "tshark is missing in CI (scripts/install-deps.sh installs it)")
        print("skipped: tshark is not installed (run scripts/install-deps.sh)")
        return nil
    }

    /// Every vector, challenge (8) and probe echoing a cookie (9) included.
    static let dissected = specVectors
    /// Each vector's exchange type: 240 probe, 241 response, 242 challenge.
    static let exchanges = ["240", "241", "240", "241", "241", "240", "240", "242", "240"]

    static func vectorsPcap() throws -> String {
        let datagrams = dissected.enumerated().map { index, vector -> Pcap.Datagram in
            let isProbe = exchanges[index] == "240"
            return Pcap.Datagram(source: IPAddress(isProbe ? "198.51.100.1" : "198.51.100.2")!, sourcePort: 500,
                                 destination: IPAddress(isProbe ? "198.51.100.2" : "198.51.100.1")!, destinationPort: 500,
                                 payload: vector.bytes)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ted-vectors-\(getpid()).pcap").path
        try Data(Pcap.file(datagrams)).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func run(_ arguments: [String]) throws -> [[String]] {
        runCommand(arguments[0], Array(arguments.dropFirst())).stdout.split(separator: "\n")
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test func ourPcapReaderReadsWhatWeWrite() throws {
        let path = try Self.vectorsPcap()
        let datagrams = try Pcap.datagrams(in: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(datagrams.map(\.payload) == Self.dissected.map(\.bytes))
    }

    @Test func tsharkDissectsTheHeaderVendorIDAndIdentity() throws {
        guard let tshark = try Self.tshark() else { return }
        let rows = try Self.run([tshark, "-r", try Self.vectorsPcap(), "-T", "fields", "-E", "occurrence=f",
                                 "-e", "isakmp.version", "-e", "isakmp.exchangetype", "-e", "isakmp.vid_bytes",
                                 "-e", "isakmp.id.type", "-e", "isakmp.id.port", "-e", "isakmp.id.protoid",
                                 "-e", "isakmp.id.data.ipv4_addr", "-e", "isakmp.id.data.ipv6_addr"])
        #expect(rows.count == 9)
        // A challenge carries no identity: only where it is sent says whose it is.
        let identities = ["198.51.100.1", "198.51.100.2", "2001:db8:ffff::1", "2001:db8:ffff::2", "198.51.100.2", "198.51.100.1",
                          "198.51.100.1", nil, "198.51.100.1"]
        for (index, row) in rows.enumerated() where row.count >= 8 {
            #expect(row[0] == "1.0" || row[0] == "0x10" || row[0] == "16", "version \(row[0])")
            #expect(row[1] == Self.exchanges[index])
            #expect(row[2] == "8320355d3c37c2d95badba15e73c79f500000003")
            guard let identity = identities[index] else {
                #expect(row[3...].allSatisfy { $0.isEmpty }, "a challenge with an identity: \(row)")
                continue
            }
            #expect(row[3] == (index == 2 || index == 3 ? "5" : "1"))
            #expect(row[4] == "500" && row[5] == "17")
            #expect(row[6] == identity || row[7] == identity, "identity in \(row)")
        }
    }

    @Test func luaDissectorDecodesSummariesAndEveryEntry() throws {
        guard let tshark = try Self.tshark() else { return }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../contrib/wireshark/ted.lua").standardized.path
        let rows = try Self.run([tshark, "-X", "lua_script:\(script)", "-r", try Self.vectorsPcap(), "-T", "fields",
                                 "-E", "aggregator=,", "-e", "ted.exchange", "-e", "ted.summary.protocol",
                                 "-e", "ted.summary.source", "-e", "ted.summary.destination6", "-e", "ted.summary.source_port",
                                 "-e", "ted.summary.destination_port", "-e", "ted.response.entries", "-e", "ted.entry.protocol",
                                 "-e", "ted.entry.responder_ports", "-e", "ted.entry.responder_address",
                                 "-e", "ted.entry.responder_mask", "-e", "ted.entry.initiator_mask6", "-e", "ted.payload",
                                 "-e", "ted.cookie", "-e", "ted.cookie.slot", "-e", "ted.cookie.mac"])
        #expect(rows.count == 9)
        guard rows.count == 9, rows.allSatisfy({ $0.count == 16 }) else { return }
        #expect(rows[0][0] == "240" && rows[0][1] == "6" && rows[0][2] == "198.18.1.10" && rows[0][4] == "40000" && rows[0][5] == "443")
        #expect(rows[1][0] == "241" && rows[1][6] == "1" && rows[1][7] == "6" && rows[1][8] == "443-443"
                && rows[1][9] == "198.18.2.0" && rows[1][10] == "255.255.255.0")
        #expect(rows[2][3] == "2001:db8:2::20" && rows[2][1] == "17" && rows[2][5] == "53")
        #expect(rows[3][6] == "2" && rows[3][7] == "17,0" && rows[3][8] == "53-53,0-65535" && rows[3][11] == "ffff:ffff::,ffff:ffff:ffff::")
        #expect(rows[4][10] == "255.255.0.255" && rows[4][9] == "198.18.0.5")
        #expect(rows[5][1] == "1" && rows[5][4] == "8" && rows[5][5] == "0")
        // Vector 7: the padding payload does not hide the summary.
        #expect(rows[6][0] == "240" && rows[6][1] == "6" && rows[6][2] == "198.18.1.10" && rows[6][5] == "443")
        #expect(rows[6][12] == "13,5,240,242" && rows[6][13].isEmpty)
        // Vector 8: a challenge is the Vendor ID and a cookie, ted's own a slot and a MAC.
        #expect(rows[7][0] == "242" && rows[7][12] == "13,243" && rows[7][1].isEmpty)
        #expect(rows[7][13] == "2122232425262728292a2b2c2d2e2f30" && rows[7][14] == "\(0x2122_2324_2526_2728 as UInt64)"
                && rows[7][15] == "292a2b2c2d2e2f30")
        // Vector 9: the echoed cookie after the summary, which it does not hide.
        #expect(rows[8][0] == "240" && rows[8][12] == "13,5,240,243" && rows[8][2] == "198.18.1.10" && rows[8][5] == "443")
        #expect(rows[8][13] == "2122232425262728292a2b2c2d2e2f30" && rows[8][15] == "292a2b2c2d2e2f30")
    }
}
