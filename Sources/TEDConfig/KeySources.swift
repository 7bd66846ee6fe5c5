import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Where the IKE keys of one configuration come from (`psk` inline or `psk-file`), and the
/// warnings about files holding a key that others than the owner and group may read.
final class KeySources {
    let configPath: String
    /// The configuration file's mode when it was read from a file: an inline key is as
    /// readable as the file.
    let configMode: mode_t?
    private(set) var warnings: [ConfigWarning] = []

    /// A key file is a line of text; anything longer than this is not one.
    static let maxKeyFileBytes = 4_096

    init(configPath: String, configMode: mode_t?) {
        self.configPath = configPath
        self.configMode = configMode
    }

    /// The key of a section that may hold `psk` or `psk-file` (not both), at least 8 bytes;
    /// nil when it holds neither. A file's trailing line ends are not part of the key.
    func secret(psk: Node?, file: Node?, path: String) throws(ConfigError) -> (text: String, node: Node)? {
        let read = ScalarReader(path: path)
        switch (psk, file) {
        case (nil, nil):
            return nil
        case (.some, let file?):
            throw ConfigError.at(path, file, "give 'psk' or 'psk-file', not both")
        case (let node?, nil):
            let secret = try read.string(node, "psk")
            guard secret.utf8.count >= 8 else { throw ConfigError.at(path, node, "'psk' must be at least 8 bytes") }
            if let mode = configMode, mode & S_IROTH != 0 {
                warnings.append(Self.warning(path, node, "this file holds a key ('psk') and others can read it (mode \(Self.octal(mode))): "
                    + "chmod o-r \(configPath), or move the key to a 'psk-file' of mode 0600"))
            }
            return (secret, node)
        case (nil, let node?):
            let name = try read.string(node, "psk-file")
            let file = resolve(name)
            // A key is a regular file: never a FIFO or a device a read could block on.
            guard Self.isRegularFile(file) else {
                throw ConfigError.at(path, node, "'psk-file' \(file) is not a regular file")
            }
            guard let bytes = readFileBytes(file, maxBytes: Self.maxKeyFileBytes) else {
                throw ConfigError.at(path, node, "cannot read 'psk-file' \(file) (missing, unreadable, or over \(Self.maxKeyFileBytes) bytes)")
            }
            var text = String(decoding: bytes, as: UTF8.self)
            while let last = text.last, last == "\n" || last == "\r\n" || last == "\r" { text.removeLast() }
            guard text.utf8.count >= 8 else {
                throw ConfigError.at(path, node, "'psk-file' \(file) holds \(text.utf8.count) bytes: a key must be at least 8")
            }
            guard !text.utf8.contains(UInt8(ascii: "\n")), !text.utf8.contains(UInt8(ascii: "\r")) else {
                throw ConfigError.at(path, node, "'psk-file' \(file) must hold one line (the key)")
            }
            warnIfOthersCanRead(file, key: "psk-file", at: node, path: path)
            return (text, node)
        }
    }

    /// Adds a warning when `file` exists and others may read it.
    func warnIfOthersCanRead(_ name: String, key: String, at node: Node, path: String) {
        let file = resolve(name)
        guard let mode = Self.mode(of: file), mode & S_IROTH != 0 else { return }
        warnings.append(Self.warning(path, node, "'\(key)' \(file) holds a key and others can read it (mode \(Self.octal(mode))): chmod o-r \(file)"))
    }

    /// A relative path is taken from the configuration file's directory.
    func resolve(_ name: String) -> String {
        guard !name.hasPrefix("/"), let slash = configPath.lastIndex(of: "/") else { return name }
        return String(configPath[...slash]) + name
    }

    /// The permission bits of `path` (following links), nil when it cannot be examined.
    static func mode(of path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func warning(_ path: String, _ node: Node, _ message: String) -> ConfigWarning {
        ConfigWarning(path: path, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, message: message)
    }
}
