// swift-tools-version:6.1
// libFuzzer targets for what strangers feed ted (decoder, responder, VICI, configuration); built by scripts/fuzz.sh with
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
        .target(name: "FuzzDriver"),
        .executableTarget(name: "ResponderFuzzer", dependencies: [
            "FuzzDriver", .product(name: "TEDEngine", package: ted), .product(name: "TEDWire", package: ted),
        ]),
        .executableTarget(name: "ViciFuzzer", dependencies: ["FuzzDriver", .product(name: "TEDVici", package: ted)]),
        .executableTarget(name: "ConfigFuzzer", dependencies: ["FuzzDriver", .product(name: "TEDConfig", package: ted)]),
    ]
)
