import FuzzDriver
import NIOCore
import TEDVici

/// The VICI message decoder on arbitrary bytes (what a hostile or broken charon could send):
/// whatever decodes must re-encode (or be refused for an over-long field) and decode equal.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    guard let message = try? ViciMessage.decode(&buffer) else { return 0 }
    var encoded = ByteBuffer()
    guard (try? message.encode(into: &encoded)) != nil else { return 0 }
    precondition((try? ViciMessage.decode(&encoded)) == message, "decode(encode(m)) != m")
    return 0
}

runFuzzer(fuzzOne)
