#if canImport(Glibc)
import Glibc
#endif

/// A failed Linux call: what ted tried and the errno text.
public struct LinuxError: Error, Hashable, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    /// The errno text alone.
    public var reason: String { String(cString: strerror(code)) }

    public var description: String { "\(operation): \(reason)" }
}

/// Turns a shim result (negative errno on failure) into a value or a thrown error.
@discardableResult
func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(LinuxError) -> Int32 {
    guard result >= 0 else { throw LinuxError(operation(), code: -result) }
    return result
}
