/// A configuration error at a position in a file: printed as `path:line:col: error: message`.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let line: Int
    public let column: Int
    public let message: String

    public init(path: String, line: Int, column: Int, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(path):\(line):\(column): error: \(message)" }
}

/// Something in a valid configuration an operator should fix (a key file others can read):
/// printed by `ted check` as `path:line:col: warning: message`.
public struct ConfigWarning: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let line: Int
    public let column: Int
    public let message: String

    public init(path: String, line: Int, column: Int, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(path):\(line):\(column): warning: \(message)" }
}
