/// The configuration text, to report only positions that exist in it.
///
/// YAML folds a plain scalar that continues on a more indented line into one line
/// (`- permit ip any any` then `   - permit tcp ...` is one policy line), and libyaml reports
/// some errors at the end of the input. Both would otherwise give positions past the end
/// of a line or of the file.
struct SourceText {
    /// Lines without their line breaks, as Unicode scalars (libyaml counts columns in them).
    /// Split at the first use, which only an error needs: a 100k-entry policy loads without
    /// 100k arrays of scalars.
    var lines: [[Unicode.Scalar]] { storage.lines }

    private let storage: Storage

    private final class Storage {
        let text: String
        lazy var lines: [[Unicode.Scalar]] = {
            // By scalars: Swift takes "\r\n" as one Character, which is not "\n".
            var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                Array(line.last == "\r" ? line.dropLast() : line)
            }
            while lines.count > 1, lines.last?.allSatisfy(SourceText.isBlank) == true { lines.removeLast() }
            return lines
        }()

        init(_ text: String) { self.text = text }
    }

    init(_ text: String) { storage = Storage(text) }

    private static func isBlank(_ scalar: Unicode.Scalar) -> Bool { scalar == " " || scalar == "\t" }

    /// The nearest position that holds a character: past the last line is the last
    /// character of the last line, past the end of a line is its last character.
    func existing(line: Int, column: Int) -> (line: Int, column: Int) {
        guard !lines.isEmpty else { return (1, 1) }
        var column = line > lines.count ? Int.max : max(column, 1)
        var line = min(max(line, 1), lines.count)
        if line == lines.count, column > lines[line - 1].count {
            while line > 1, lines[line - 1].allSatisfy(Self.isBlank) { line -= 1; column = Int.max }
        }
        return (line, min(column, max(lines[line - 1].count, 1)))
    }

    /// The position of character `offset` (0-based) of a scalar's value, following the value
    /// across folded line breaks. `line` and `column` are where the scalar's value starts.
    func position(ofOffset offset: Int, inValue value: String, line: Int, column: Int) -> (line: Int, column: Int) {
        var l = line - 1, c = column - 1
        let characters = Array(value.unicodeScalars)
        var index = 0
        while index < min(offset, characters.count), l < lines.count {
            let character = characters[index]
            let restIsBlank = lines[l][min(c, lines[l].count)...].allSatisfy(Self.isBlank)
            if (character == " " || character == "\n"), restIsBlank, l + 1 < lines.count {
                // One folded break: the rest of this line, blank lines, the next line's indentation.
                l += 1
                while l + 1 < lines.count, lines[l].allSatisfy(Self.isBlank) { l += 1 }
                c = lines[l].prefix(while: Self.isBlank).count
            } else {
                c += 1
            }
            index += 1
        }
        if l < lines.count, c >= lines[l].count, l + 1 < lines.count, offset < characters.count {
            l += 1
            c = lines[l].prefix(while: Self.isBlank).count
        }
        return existing(line: l + 1, column: c + 1)
    }

    /// `error` moved to a position that exists.
    func clamped(_ error: ConfigError) -> ConfigError {
        let (line, column) = existing(line: error.line, column: error.column)
        return ConfigError(path: error.path, line: line, column: column, message: error.message)
    }
}
