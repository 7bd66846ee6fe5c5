import ArgumentParser
import TEDConfig
import TEDModel

/// `ted classify --packets FILE`: every packet of a file through the compiled classifier.
///
/// One packet per line in the `--packet` syntax; blank lines and lines starting with `#`
/// are skipped. One result line per packet, in input order. A bad line is reported on
/// standard error as `FILE:LINE:COLUMN: error: ...` and the rest is still classified.
struct PacketFileClassifier {
    let path: String
    let policy: CompiledPolicy
    let role: Role
    let json: Bool

    /// Classifies the file; returns whether every line was a packet.
    func run() throws -> Bool {
        guard let text = readTextFile(path, maxBytes: 1 << 31) else {
            printError("\(path): error: cannot read the packet file")
            throw ExitCode(2)
        }
        var allGood = true
        var output = ""
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let content = line.hasSuffix("\r") ? line.dropLast() : line
            let trimmedContent = trimmed(content)
            if trimmedContent.isEmpty || trimmedContent.hasPrefix("#") { continue }
            let packet: Packet
            do throws(SyntaxError) {
                packet = try Packet(parsing: String(content))
            } catch {
                allGood = false
                print(output, terminator: "")
                output = ""
                printError("\(path):\(lineNumber):\(error.column): error: \(error.message)")
                continue
            }
            output += result(line: lineNumber, packet: packet, match: policy.firstMatch(packet, as: role))
            output += "\n"
            if output.utf8.count >= 1 << 16 {
                print(output, terminator: "")
                output = ""
            }
        }
        print(output, terminator: "")
        return allGood
    }

    private func result(line: Int, packet: Packet, match: PolicyRule?) -> String {
        if json {
            return JSON.object([
                ("line", .int(line)), ("index", match.map { .int($0.index) } ?? .null),
                ("action", match.map { .string($0.entry.action.rawValue) } ?? .null),
            ]).rendered
        }
        guard let match else { return "line \(line): \(packet): no entry (not protected)" }
        return "line \(line): \(packet): entry \(match.index) \(match.entry.action.rawValue): \(match.text)"
    }
}
