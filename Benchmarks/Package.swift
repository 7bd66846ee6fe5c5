// swift-tools-version:6.1
// ted's benchmarks: `ted-bench` (the responder under load beside an echo server, the codec,
// the inputs of responder.sh, the shares) and the baseline index, never in the shipped binary.
// Built by `swift build --package-path Benchmarks` (scripts/test.sh builds and tests it).
import Foundation
import PackageDescription

/// A path dependency's identity is its folder's name, which depends on the checkout.
let ted = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "ted-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // A hash index on the local side: the classifier's baseline before the compiled trees.
        .target(name: "BaselineIndex", dependencies: [.product(name: "TEDModel", package: ted)]),
        .executableTarget(name: "ted-bench", dependencies: [
            "BaselineIndex",
            .product(name: "TEDModel", package: ted),
            .product(name: "TEDWire", package: ted),
            .product(name: "TEDBenchSupport", package: ted),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "BaselineIndexTests", dependencies: [
            "BaselineIndex", .product(name: "TEDModel", package: ted), .product(name: "TEDBenchSupport", package: ted),
        ]),
    ]
)
