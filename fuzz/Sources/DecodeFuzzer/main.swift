import NIOCore
import TEDWire

#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input: decode arbitrary bytes; whatever decodes must re-encode and decode to
/// the same message, and re-encode to exactly the datagram's canonical form
/// (CanonicalForm.swift, shared with TEDWireTests): its own bytes but for the liberties
/// the spec grants a receiver. A decoder that accepts too much fails the second check.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let message = try? TEDCodec.decode(ByteBuffer(bytes: bytes)) else { return 0 }
    let encoded = TEDCodec.encode(message)
    let again = try? TEDCodec.decode(encoded)
    precondition(again == message, "decode(encode(m)) != m")
    precondition(canonicalForm(Array(bytes)) == Array(encoded.readableBytesView),
                 "an accepted datagram does not re-encode to its canonical form")
    return 0
}

// SwiftPM renames an executable's main, so libFuzzer's own main is not used: drive it here.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
