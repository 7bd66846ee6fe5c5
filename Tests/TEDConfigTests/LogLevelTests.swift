import Testing
@testable import TEDConfig

/// `log-level`: swift-log's seven level names, `info` when absent; any other value is
/// refused with the position of the value.
@Suite struct LogLevelTests {
    static let head = "identity: 198.51.100.1\npolicy: [permit ip any any]\n"

    @Test func absentIsInfo() throws {
        #expect(try ConfigurationLoader.parse(Self.head, path: "t.yaml").logLevel == .info)
    }

    @Test(arguments: LogLevel.allCases)
    func acceptsEveryLevel(_ level: LogLevel) throws {
        let configuration = try ConfigurationLoader.parse(Self.head + "log-level: \(level.rawValue)\n", path: "t.yaml")
        #expect(configuration.logLevel == level)
    }

    @Test(arguments: ["verbose", "INFO", "warn", "6"])
    func refusesOtherValues(_ text: String) {
        #expect {
            _ = try ConfigurationLoader.parse(Self.head + "log-level: \(text)\n", path: "t.yaml")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.line == 3 && error.column == 12 && error.message.contains("'log-level' must be one of trace, debug")
                && error.description.hasPrefix("t.yaml:3:12: error: ")
        }
    }
}
