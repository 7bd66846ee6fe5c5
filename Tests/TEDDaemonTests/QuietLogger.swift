import Logging

/// A logger that drops every line, for tests that do not read the log.
let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
