import Testing
import TEDModel
@testable import TEDConfig

#if canImport(Glibc)
import Glibc
#endif

/// A directory of scratch files, removed when the test ends.
private final class ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/ted-config-test.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw ScratchError() }
        path = String(cString: made)
    }

    /// Writes `text` to `name` with `mode`; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t) -> String {
        let file = path + "/" + name
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot create \(file)")
        _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        chmod(file, mode)
        return file
    }

    deinit {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(path)
    }

    struct ScratchError: Error {}
}

/// `intercept-port` may not be the listen port: both sockets would bind it.
@Suite struct InterceptPortTests {
    static let base = "identity: 198.51.100.1\nlisten: 0.0.0.0:1500\npolicy: [permit ip any any]\n"

    @Test func anExplicitInterceptPortEqualToTheListenPortIsRefusedWhereItIsWritten() {
        let text = Self.base + "dataplane:\n  intercept: true\n  intercept-port: 1500\n"
        #expect {
            _ = try ConfigurationLoader.parse(text, path: "t.yaml")
        } throws: {
            let error = $0 as? ConfigError
            return error?.line == 6 && error?.column == 19 && error?.message.contains("is the listen port") == true
        }
    }

    @Test func theDefaultInterceptPortCollidingIsRefusedAtIntercept() {
        // The default intercept-port is 1500, the shipped listen port: the error points at `intercept`.
        let text = Self.base + "dataplane:\n  traps: true\n  intercept: true\n"
        #expect {
            _ = try ConfigurationLoader.parse(text, path: "t.yaml")
        } throws: {
            let error = $0 as? ConfigError
            return error?.line == 6 && error?.column == 14 && error?.message.contains("(the default)") == true
        }
    }

    @Test func distinctPortsAndInterceptionOffPass() throws {
        let split = try ConfigurationLoader.parse(Self.base + "dataplane: { intercept: true, intercept-port: 1501 }\n", path: "t.yaml")
        #expect(split.dataplane.interceptPort == 1501 && split.listen.port == 1500)
        // Interception off and no port written: the default is never bound.
        #expect(try ConfigurationLoader.parse(Self.base + "dataplane: { traps: true }\n", path: "t.yaml").dataplane.interceptPort == 1500)
        // The listen port defaults to 500: the default intercept-port does not collide.
        let defaults = try ConfigurationLoader.parse("identity: 198.51.100.1\npolicy: [permit ip any any]\ndataplane: { intercept: true }\n", path: "t.yaml")
        #expect(defaults.listen.port == 500 && defaults.dataplane.interceptPort == 1500)
    }
}

/// `psk-file`: the key in a file of its own, and warnings when others can read a key.
@Suite struct PSKFileTests {
    static func config(_ ike: String, peers: String = "peers: [198.51.100.0/24]") -> String {
        "identity: 198.51.100.1\npolicy: [permit ip any any]\n\(peers)\nike:\n\(ike)\n"
    }

    @Test func aKeyFileServesAsTheGroupKeyWithoutItsLineEnd() throws {
        let dir = try ScratchDirectory()
        dir.write("ike.psk", "a long shared secret\n", mode: 0o600)
        let config = dir.write("ted.yaml", Self.config("  vici: /x\n  psk-file: ike.psk"), mode: 0o600)
        let c = try ConfigurationLoader.load(path: config)
        #expect(c.ike?.authentication == .psk("a long shared secret"))
        #expect(c.warnings.isEmpty)
    }

    @Test func aPeersOwnKeyMayComeFromAFile() throws {
        let dir = try ScratchDirectory()
        let key = dir.write("gwB.psk", "gwB's own key", mode: 0o640)
        let c = try ConfigurationLoader.parse(Self.config("  vici: /x", peers: "peers: [{ identity: 198.51.100.2, psk-file: \(key) }]"),
                                              path: dir.path + "/ted.yaml")
        #expect(c.peerKeys == [PeerKey(identity: AddressPattern("198.51.100.2")!, secret: "gwB's own key")])
        #expect(c.ike?.authentication == .peerKeys && c.warnings.isEmpty)
    }

    @Test func aKeyFileOthersCanReadIsAWarningAtItsLine() throws {
        let dir = try ScratchDirectory()
        dir.write("ike.psk", "a long shared secret\n", mode: 0o644)
        let config = dir.write("ted.yaml", Self.config("  vici: /x\n  psk-file: ike.psk"), mode: 0o600)
        let c = try ConfigurationLoader.load(path: config)
        #expect(c.ike?.authentication == .psk("a long shared secret"))
        #expect(c.warnings.count == 1)
        #expect(c.warnings.first?.description.hasPrefix("\(config):6:13: warning: 'psk-file' \(dir.path)/ike.psk holds a key and others can read it (mode 0644)") == true)
    }

    @Test func anInlineKeyInAFileOthersCanReadIsAWarning() throws {
        let dir = try ScratchDirectory()
        let open = dir.write("open.yaml", Self.config("  vici: /x\n  psk: a long shared secret"), mode: 0o644)
        let warnings = try ConfigurationLoader.load(path: open).warnings
        #expect(warnings.count == 1 && warnings.first?.line == 6 && warnings.first?.message.contains("holds a key ('psk')") == true)
        let closed = dir.write("closed.yaml", Self.config("  vici: /x\n  psk: a long shared secret"), mode: 0o640)
        #expect(try ConfigurationLoader.load(path: closed).warnings.isEmpty)
    }

    @Test(arguments: [
        ("  psk: inline key here\n  psk-file: /etc/ted/ike.psk", "give 'psk' or 'psk-file', not both"),
        ("  psk-file: /nonexistent/ike.psk", "'psk-file' /nonexistent/ike.psk is not a regular file"),
        ("  psk-file: /dev/null", "'psk-file' /dev/null is not a regular file"),
        ("  psk-file: /tmp", "'psk-file' /tmp is not a regular file"),
    ])
    func badKeyFilesAreRefused(ike: String, message: String) {
        #expect {
            _ = try ConfigurationLoader.parse(Self.config(ike), path: "/tmp/t.yaml")
        } throws: { ($0 as? ConfigError)?.message.hasPrefix(message) == true }
    }

    @Test func shortAndMultiLineKeyFilesAreRefused() throws {
        let dir = try ScratchDirectory()
        dir.write("short.psk", "short\n", mode: 0o600)
        dir.write("two.psk", "first line key\nsecond line\n", mode: 0o600)
        for (file, message) in [("short.psk", "holds 5 bytes: a key must be at least 8"), ("two.psk", "must hold one line")] {
            #expect {
                _ = try ConfigurationLoader.parse(Self.config("  psk-file: \(file)"), path: dir.path + "/ted.yaml")
            } throws: { ($0 as? ConfigError)?.message.contains(message) == true }
        }
    }
}
