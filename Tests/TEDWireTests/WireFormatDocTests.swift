import Foundation
import Testing

/// docs/WIRE-FORMAT.md and the test constants hold the same vectors, so neither can drift.
@Suite struct WireFormatDocTests {
    static let docPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/WIRE-FORMAT.md").path

    /// The numbered vectors of the doc's last section: "N. `name` — ..." then an indented hex line.
    static func documentedVectors(_ text: String) -> [(name: String, hex: String)] {
        var vectors: [(name: String, hex: String)] = []
        var name: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let match = line.wholeMatch(of: /[0-9]+\. `([a-z0-9-]+)` .*/) {
                name = String(match.1)
            } else if let current = name, let match = line.wholeMatch(of: /\ {3}`([0-9a-f]+)`/) {
                vectors.append((current, String(match.1)))
                name = nil
            }
        }
        return vectors
    }

    @Test func documentHoldsTheSevenVectors() throws {
        let text = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        let vectors = Self.documentedVectors(text)
        #expect(vectors.map(\.name) == specVectors.map(\.name))
        for vector in vectors {
            #expect(vector.hex.count % 2 == 0, "\(vector.name): odd number of hex digits")
            let bytes = hexBytes(vector.hex)
            let length = bytes.count >= 28 ? bytes[24..<28].reduce(0) { $0 << 8 | Int($1) } : -1
            #expect(length == bytes.count, "\(vector.name): header length \(length), \(bytes.count) bytes")
        }
    }

    @Test(arguments: specVectors)
    func testConstantIsTheDocumentedVector(_ vector: Vector) throws {
        let text = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        let documented = Self.documentedVectors(text).first { $0.name == vector.name }
        #expect(documented?.hex == vector.hex)
    }
}
