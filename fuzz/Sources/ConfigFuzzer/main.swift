import FuzzDriver
import TEDConfig

/// The configuration loader on arbitrary text: it either loads or says `file:line:col:`
/// with a line and column that exist in the text.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ConfigurationLoader.parse(text, path: "fuzz.yaml")
    } catch {
        let message = "\(error)"
        precondition(message.hasPrefix("fuzz.yaml:"), "error without its position: \(message)")
    }
    return 0
}

runFuzzer(fuzzOne)
