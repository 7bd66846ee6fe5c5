import Foundation

/// Starts this executable with arguments.
func spawnSelf(_ arguments: [String]) throws -> Process {
    try spawn(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path, arguments)
}

/// Starts an executable with arguments.
func spawn(_ path: String, _ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    try process.run()
    return process
}

/// A UDP port free on 127.0.0.1 right now.
func freeUDPPort() throws -> UInt16 {
    let probe = try UDPLoadGenerator()
    return probe.port
}
