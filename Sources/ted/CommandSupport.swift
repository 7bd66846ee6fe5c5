import ArgumentParser
import TEDConfig
import TEDModel

#if canImport(Glibc)
import Glibc
#endif

/// Prints a line to standard error.
func printError(_ message: String) {
    let bytes = Array((message + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Loads a configuration or exits with status 2 after printing `path:line:col: error: ...`.
/// Where every command that reads a configuration looks without `--config`: the Debian
/// package's conffile, the one the systemd unit runs.
let defaultConfigPath = "/etc/ted/ted.yaml"

func loadConfiguration(_ path: String) throws -> Configuration {
    do {
        return try ConfigurationLoader.load(path: path)
    } catch {
        printError(error.description)
        throw ExitCode(2)
    }
}

/// Parses a `--packet` argument (`<protocol> <src>[:<port>] <dst>[:<port>]`), as a usage error on failure.
func parsePacket(_ text: String, option: String = "--packet") throws -> Packet {
    do {
        return try Packet(parsing: text)
    } catch {
        throw ValidationError("\(option) \"\(text)\": column \(error.column): \(error.message)")
    }
}

/// Parses an ACL entry without its action, as a usage error on failure.
func parseSelector(_ text: String, option: String) throws -> PolicyEntry {
    do {
        return try ACLParser.parseSelector(text)
    } catch {
        throw ValidationError("\(option) \"\(text)\": column \(error.column): \(error.message)")
    }
}

extension Role: ExpressibleByArgument {}

/// `text` without the given characters at either end.
func trimmed(_ text: some StringProtocol, _ characters: String = " \t") -> String {
    let set = Set(characters)
    var slice = Substring(text)
    while let first = slice.first, set.contains(first) { slice.removeFirst() }
    while let last = slice.last, set.contains(last) { slice.removeLast() }
    return String(slice)
}
