import Foundation
import Testing
import TEDTestSupport

/// `ted daemon` where an operator starts it: it makes its runtime directory, and a start
/// that cannot succeed is one clear line naming what to do, exit 1.
@Suite(.serialized) struct DaemonStartupCLITests {
    static func config(listen: String, socket: String) throws -> String {
        try CLITests.temporaryFile("startup-\(UUID().uuidString).yaml", """
            identity: 127.0.0.1
            listen: \(listen)
            control-socket: \(socket)
            policy: [permit ip 198.18.1.0/24 198.18.0.0/15]
            """)
    }

    @Test func aTakenPortIsOneLineWithWhatToDo() throws {
        let holder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        let path = try Self.config(listen: "127.0.0.1:\(port)", socket: "/tmp/ted-startup-\(getpid()).sock")
        let result = try CLITests.run(["daemon", "--config", path], timeout: 10)
        #expect(result.status == 1)
        #expect(result.stderr.contains("ted daemon: bind UDP 127.0.0.1:\(port): Address already in use: another process holds that port"))
    }

    @Test func theRuntimeDirectoryIsCreatedOwnerAndGroupOnly() throws {
        let directory = "/tmp/ted-runtime-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = "\(directory)/run/ted.sock"
        let path = try Self.config(listen: "127.0.0.1:0", socket: socketPath)
        let process = try OwnedProcess(CLITests.ted, ["daemon", "--config", path])
        defer { process.terminate() }
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(directory)/run")
        #expect((attributes[.posixPermissions] as? Int) == 0o750)
        let socketMode = try FileManager.default.attributesOfItem(atPath: socketPath)[.posixPermissions] as? Int
        #expect(socketMode == 0o600)
        process.terminate()
        #expect(process.exitCode == 0)
    }
}

import TEDLinux
import TEDModel

/// This host's own and subnet broadcast addresses, as the identity check reads them.
@Suite struct LocalInterfacesTests {
    @Test func loopbackIsOursAndNothingIsItsOwnBroadcast() throws {
        let local = try #require(LocalInterfaces.current())
        #expect(local.addresses.contains(IPAddress("127.0.0.1")!))
        #expect(local.broadcasts.isDisjoint(with: local.addresses))
        // 127.0.0.1/8 on lo: its subnet broadcast is 127.255.255.255.
        #expect(local.broadcasts.contains(IPAddress("127.255.255.255")!))
    }
}
