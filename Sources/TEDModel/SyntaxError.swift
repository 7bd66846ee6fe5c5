/// A syntax error in one line of text (an ACL entry or a `--packet`), with the 1-based column.
public struct SyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public let column: Int
    public let message: String

    public init(column: Int, message: String) {
        self.column = column
        self.message = message
    }

    public var description: String { "\(column): \(message)" }
}

/// A whitespace-separated word and its 1-based column.
struct Token: Equatable {
    let text: String
    let column: Int
}

/// Splits a line into whitespace-separated tokens, remembering columns.
struct Tokenizer {
    private var tokens: [Token]
    private var index = 0
    private let endColumn: Int

    init(_ line: String) {
        var result: [Token] = []
        let utf8 = line.utf8
        if utf8.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "\r") }) {
            // ASCII, as policies are: a byte is a column, and tokens are cut without Character walks.
            var start: String.Index?
            var column = 1, startColumn = 1
            for index in utf8.indices {
                let byte = utf8[index]
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                    if let first = start { result.append(Token(text: String(line[first..<index]), column: startColumn)) }
                    start = nil
                } else if start == nil {
                    start = index
                    startColumn = column
                }
                column += 1
            }
            if let first = start { result.append(Token(text: String(line[first...]), column: startColumn)) }
            tokens = result
            endColumn = column
            return
        }
        var current = ""
        var start = 0
        for (offset, character) in line.enumerated() {
            if character == " " || character == "\t" {
                if !current.isEmpty { result.append(Token(text: current, column: start + 1)) }
                current = ""
            } else {
                if current.isEmpty { start = offset }
                current.append(character)
            }
        }
        if !current.isEmpty { result.append(Token(text: current, column: start + 1)) }
        tokens = result
        endColumn = line.count + 1
    }

    var peek: Token? { index < tokens.count ? tokens[index] : nil }

    mutating func next() -> Token? {
        guard index < tokens.count else { return nil }
        defer { index += 1 }
        return tokens[index]
    }

    mutating func next(expecting what: String) throws(SyntaxError) -> Token {
        guard let token = next() else { throw SyntaxError(column: endColumn, message: "expected \(what)") }
        return token
    }
}
