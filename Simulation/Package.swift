// swift-tools-version:6.1
// ted's mesh simulator: `ted-sim`, a deterministic discrete-event simulation of many
// gateways running the real engines over a modelled network, never in the shipped binary.
// Built by `swift build -c release --package-path Simulation` (Simulation/simulate.sh).
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which depends on the checkout.
let ted = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "ted-simulation",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(name: "ted-sim", dependencies: [
            .product(name: "TEDModel", package: ted),
            .product(name: "TEDWire", package: ted),
            .product(name: "TEDEngine", package: ted),
            .product(name: "TEDBenchSupport", package: ted),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    ]
)
