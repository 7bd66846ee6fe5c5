import ArgumentParser
import NIOCore
import TEDConfig
import TEDModel
import TEDWire

/// `ted decode`: decode TED messages from hex, a raw file, or a pcap capture.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode TED messages (exit 0 all decode, 1 one is rejected, 2 usage error).",
        discussion: "With --pcap every UDP datagram to or from port 500 is decoded, one per line with --json.")

    @Option(help: "The whole UDP payload in hex.")
    var hex: String?

    @Option(help: "A file holding one raw UDP payload.")
    var file: String?

    @Option(help: "A classic pcap capture (raw, Ethernet or Linux cooked).")
    var pcap: String?

    @Option(help: "With --pcap: the UDP port whose datagrams are decoded.")
    var port = ISAKMP.port

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        let given = [hex, file, pcap].compactMap { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --hex, --file, --pcap") }
        if let hex, decodeHex(hex) == nil { throw ValidationError("--hex: not an even number of hex digits") }
    }

    func run() throws {
        var datagrams: [(label: String, bytes: [UInt8])] = []
        if let hex, let bytes = decodeHex(hex) {
            datagrams = [("hex", bytes)]
        } else if let file {
            guard let bytes = readFileBytes(file) else { throw usage("--file \(file): cannot read it") }
            datagrams = [(file, bytes)]
        } else if let pcap {
            guard let bytes = readFileBytes(pcap) else { throw usage("--pcap \(pcap): cannot read it") }
            do {
                datagrams = try Pcap.datagrams(in: bytes, port: port).map {
                    ("\($0.source):\($0.sourcePort) -> \($0.destination):\($0.destinationPort)", $0.payload)
                }
            } catch {
                throw usage("--pcap \(pcap): \(error)")
            }
        }
        var rejected = false
        for (label, bytes) in datagrams {
            do {
                let message = try TEDCodec.decode(ByteBuffer(bytes: bytes))
                print(json ? message.json.rendered : (["# \(label)"] + message.lines).joined(separator: "\n"))
            } catch {
                rejected = true
                print(json ? JSON.object([("error", .string(error.reason.rawValue))]).rendered : "# \(label)\nrejected: \(error)")
            }
        }
        if rejected { throw ExitCode(1) }
    }

    private func usage(_ message: String) -> ExitCode {
        printError("ted decode: \(message)")
        return ExitCode(2)
    }
}

/// Bytes from hex text (spaces and colons allowed), or nil.
func decodeHex(_ text: String) -> [UInt8]? {
    let digits = text.filter { !" :\n\t".contains($0) }
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}

#if canImport(Glibc)
import Glibc
#endif
