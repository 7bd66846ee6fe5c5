// swift-tools-version:6.1
// libFuzzer target for ted's TED v3 decoder; built by scripts/fuzz.sh with
// -sanitize=fuzzer,address, never by the main package's build.
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which depends on the checkout.
let ted = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "ted-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(name: "DecodeFuzzer", dependencies: [.product(name: "TEDWire", package: ted)]),
    ]
)
