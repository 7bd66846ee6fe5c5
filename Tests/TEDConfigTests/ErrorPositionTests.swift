import Testing
@testable import TEDConfig

/// Every error names a character that exists in the file, on the line where the mistake is.
@Suite struct ErrorPositionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let line: Int
        let column: Int
        let message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "list item indented one space too far (folded into the line above)",
             text: "identity: 198.51.100.1\npolicy:\n  - permit ip any any\n   - permit tcp any any\n",
             line: 4, column: 4, message: "unexpected '-' at end of entry (YAML joined lines 3 to 4 into one policy line: check the indentation of line 4)"),
        Case(name: "long line, then a list item indented too far",
             text: "identity: 198.51.100.1\npolicy:\n  - permit ip 198.18.1.0/24 198.18.0.0/16\n   - permit tcp any any eq 22\n",
             line: 4, column: 4, message: "unexpected '-'"),
        Case(name: "mistake on the continuation line of a plain scalar",
             text: "identity: 198.51.100.1\npolicy:\n  - permit tcp any\n    any eq nope\n",
             line: 4, column: 12, message: "invalid port 'nope'"),
        Case(name: "mistake on the third line of a plain scalar",
             text: "identity: 198.51.100.1\npolicy:\n  - permit tcp\n    any\n    any eq nope\n",
             line: 5, column: 12, message: "invalid port 'nope'"),
        Case(name: "mistake on the second line of a double-quoted scalar",
             text: "identity: 198.51.100.1\npolicy:\n  - permit ip any any\n  - \"permit tcp any\n    any eq nope\"\n",
             line: 5, column: 12, message: "invalid port 'nope'"),
        Case(name: "missing word at the end of a folded scalar",
             text: "identity: 198.51.100.1\npolicy:\n  - permit tcp any\n    any eq\n",
             line: 4, column: 10, message: "expected a port after 'eq'"),
        Case(name: "mapping key indented one space too far",
             text: "identity: 198.51.100.1\ndiscovery:\n  retries: 2\n   timeout: 1s\npolicy: [permit ip any any]\n",
             line: 4, column: 11, message: "mapping values are not allowed"),
        Case(name: "unclosed flow list at the end of the file",
             text: "identity: 198.51.100.1\npolicy: [permit ip any any\n",
             line: 2, column: 26, message: "expected ',' or ']'"),
        Case(name: "unclosed flow list, file without a final newline, blank lines after",
             text: "identity: 198.51.100.1\npolicy: [permit ip any any\n\n  \n",
             line: 2, column: 26, message: "expected ',' or ']'"),
        Case(name: "tab as indentation",
             text: "identity: 198.51.100.1\npolicy:\n\t- permit ip any any\n",
             line: 3, column: 1, message: "cannot start any token"),
        Case(name: "unclosed quote",
             text: "identity: \"198.51.100.1\npolicy: []\n",
             line: 2, column: 10, message: "end of stream"),
        Case(name: "Windows line ends",
             text: "identity: 198.51.100.1\r\npolicy:\r\n  - permit tcp any any eq nope\r\n",
             line: 3, column: 27, message: "invalid port 'nope'"),
    ]

    @Test(arguments: cases)
    func namesTheOffendingCharacter(_ c: Case) {
        #expect {
            _ = try ConfigurationLoader.parse(c.text, path: "bad.yaml")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            let ok = error.line == c.line && error.column == c.column && error.message.contains(c.message)
            if !ok { print("\(c.name): got \(error)") }
            return ok
        }
    }

    /// Whatever the line and column, they name a character of the file (or line 1 column 1 of an empty one).
    @Test(arguments: cases)
    func reportsOnlyPositionsThatExist(_ c: Case) {
        do {
            _ = try ConfigurationLoader.parse(c.text, path: "bad.yaml")
            Issue.record("\(c.name): accepted")
        } catch {
            let lines = c.text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.last == "\r" ? $0.dropLast() : $0 }
            #expect(lines.indices.contains(error.line - 1), "\(c.name): line \(error.line) of \(lines.count)")
            if lines.indices.contains(error.line - 1) {
                #expect((1...max(lines[error.line - 1].count, 1)).contains(error.column),
                        "\(c.name): column \(error.column) of line \(error.line)")
            }
        }
    }

    @Test func clampsPositionsPastTheEnd() {
        let source = SourceText("ab\ncdef\n\n")
        #expect(source.existing(line: 9, column: 1) == (2, 4))
        #expect(source.existing(line: 1, column: 7) == (1, 2))
        #expect(source.existing(line: 2, column: 3) == (2, 3))
        #expect(SourceText("").existing(line: 3, column: 3) == (1, 1))
    }
}
