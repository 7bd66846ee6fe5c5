import NIOCore
import Yams

/// Reads a mapping node key by key, refusing unknown keys, with positions for errors.
struct MappingReader {
    let path: String
    let node: Node
    private let pairs: [(key: String, keyNode: Node, value: Node)]
    private var used: Set<String> = []

    init(path: String, node: Node, what: String) throws(ConfigError) {
        self.path = path
        self.node = node
        guard case .mapping(let mapping) = node else {
            throw ConfigError.at(path, node, "\(what) must be a mapping of keys to values")
        }
        var pairs: [(String, Node, Node)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw ConfigError.at(path, key, "keys must be plain words")
            }
            guard seen.insert(scalar.string).inserted else {
                throw ConfigError.at(path, key, "duplicate key '\(scalar.string)'")
            }
            pairs.append((scalar.string, key, value))
        }
        self.pairs = pairs
    }

    /// The value node of `key`, marking it used.
    mutating func value(_ key: String) -> Node? {
        used.insert(key)
        return pairs.first { $0.key == key }?.value
    }

    /// Throws on the first key that no `value(_:)` call asked for.
    func rejectUnknownKeys(allowed: [String]) throws(ConfigError) {
        for pair in pairs where !used.contains(pair.key) {
            throw ConfigError.at(path, pair.keyNode,
                                 "unknown key '\(pair.key)' (expected one of: \(allowed.joined(separator: ", ")))")
        }
    }
}

extension ConfigError {
    static func at(_ path: String, _ node: Node, _ message: String) -> ConfigError {
        let mark = node.mark
        return ConfigError(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }
}

/// Scalar conversions with positioned errors.
struct ScalarReader {
    let path: String

    func string(_ node: Node, _ key: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else {
            throw ConfigError.at(path, node, "'\(key)' must be a single value")
        }
        return scalar.string
    }

    func int(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(node, key)
        guard let value = Int(text), range.contains(value) else {
            throw ConfigError.at(path, node, "'\(key)' must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }

    func seconds(_ node: Node, _ key: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double {
        let text = try string(node, key)
        var number = Substring(text)
        if number.hasSuffix("ms") {
            number = number.dropLast(2)
            guard let value = Double(number).map({ $0 / 1000 }), range.contains(value) else {
                throw ConfigError.at(path, node, "'\(key)' must be a duration from \(range.lowerBound) to \(range.upperBound) s, not '\(text)'")
            }
            return value
        }
        if number.hasSuffix("s") { number = number.dropLast() }
        guard let value = Double(number), value.isFinite, range.contains(value) else {
            throw ConfigError.at(path, node, "'\(key)' must be a duration from \(range.lowerBound) to \(range.upperBound) s (e.g. 0.5, 500ms, 30s), not '\(text)'")
        }
        return value
    }

    /// A duration within one of the engine's ranges of `TimeAmount`.
    func seconds(_ node: Node, _ key: String, in range: ClosedRange<TimeAmount>) throws(ConfigError) -> Double {
        try seconds(node, key, in: range.lowerBound.seconds...range.upperBound.seconds)
    }

    func bool(_ node: Node, _ key: String) throws(ConfigError) -> Bool {
        let text = try string(node, key)
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigError.at(path, node, "'\(key)' must be true or false, not '\(text)'")
        }
    }

    /// A size in bytes: a whole number, or one followed by K, M or G (powers of 1024).
    func bytes(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(node, key)
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text), unit = 1
        if let last = digits.last?.uppercased().first, let factor = units[last] {
            digits = digits.dropLast()
            unit = factor
        }
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits),
              case let (value, overflow) = number.multipliedReportingOverflow(by: unit), !overflow,
              range.contains(value) else {
            throw ConfigError.at(path, node, "'\(key)' must be a size from \(range.lowerBound) bytes to \(range.upperBound >> 30)G (e.g. 65536, 512K, 64M), not '\(text)'")
        }
        return value
    }

    func port(_ node: Node, _ key: String) throws(ConfigError) -> UInt16 {
        UInt16(try int(node, key, in: 1...65535))
    }

    func list(_ node: Node, _ key: String) throws(ConfigError) -> [Node] {
        guard case .sequence(let sequence) = node else {
            throw ConfigError.at(path, node, "'\(key)' must be a list")
        }
        return Array(sequence)
    }

    func strings(_ node: Node, _ key: String) throws(ConfigError) -> [String] {
        var result: [String] = []
        for item in try list(node, key) { result.append(try string(item, key)) }
        return result
    }
}
