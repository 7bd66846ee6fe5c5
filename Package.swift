// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ted",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ted", targets: ["ted"]),
        .library(name: "TEDModel", targets: ["TEDModel"]),
        .library(name: "TEDWire", targets: ["TEDWire"]),
        .library(name: "TEDEngine", targets: ["TEDEngine"]),
        .library(name: "TEDVici", targets: ["TEDVici"]),
        .library(name: "TEDConfig", targets: ["TEDConfig"]),
        // ClassBench sets, seeded traces, clocks: for `ted bench`, the tests and Benchmarks/, not the model.
        .library(name: "TEDBenchSupport", targets: ["TEDBenchSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Pure model: addresses, patterns, ports, proxies, intersection, ACL policy. No I/O.
        .target(name: "TEDModel"),
        // Configuration file (YAML) into model values, with file:line:col errors.
        .target(name: "TEDConfig", dependencies: [
            "TEDModel", "TEDWire", "TEDEngine",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // Byte-exact TED v3 codec (docs/WIRE-FORMAT.md) and pcap framing.
        .target(name: "TEDWire", dependencies: [
            "TEDModel",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Sans-IO initiator and responder state machines.
        .target(name: "TEDEngine", dependencies: [
            "TEDModel", "TEDWire",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // C structs and constants for Linux netlink XFRM and socket options.
        .target(name: "CTEDLinux"),
        // Linux adapters: XFRM trap policies and ACQUIRE, nftables interception, transparent sockets.
        .target(name: "TEDLinux", dependencies: ["CTEDLinux", "TEDModel"]),
        // strongSwan through VICI: the protocol codec and client, the IKE controller, selector text.
        .target(name: "TEDVici", dependencies: [
            "TEDModel",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The running service: UDP I/O, timers, control socket, metrics, hand-off.
        .target(name: "TEDDaemon", dependencies: [
            "TEDModel", "TEDWire", "TEDEngine", "TEDConfig", "TEDLinux", "TEDVici",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // What `ted bench` and the Benchmarks package share: ClassBench sets, seeded traces, clocks.
        .target(name: "TEDBenchSupport", dependencies: ["TEDModel"]),
        .executableTarget(name: "ted", dependencies: [
            "TEDModel", "TEDWire", "TEDEngine", "TEDConfig", "TEDDaemon", "TEDLinux", "TEDVici", "TEDBenchSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // Helpers the test targets share (seeded randomness); never linked into the product.
        .target(name: "TEDTestSupport", dependencies: ["TEDBenchSupport"], path: "Tests/TEDTestSupport"),
        .testTarget(name: "TEDModelTests", dependencies: ["TEDModel", "TEDBenchSupport", "TEDTestSupport"]),
        .testTarget(name: "TEDConfigTests", dependencies: ["TEDConfig", "TEDEngine"]),
        .testTarget(name: "TEDWireTests", dependencies: ["TEDWire", "TEDTestSupport"]),
        .testTarget(name: "TEDEngineTests", dependencies: ["TEDEngine", "TEDTestSupport"]),
        .testTarget(name: "TEDViciTests", dependencies: ["TEDVici"]),
        .testTarget(name: "TEDLinuxTests", dependencies: ["TEDLinux", "TEDTestSupport"]),
        .testTarget(name: "TEDDaemonTests", dependencies: ["TEDDaemon", "TEDEngine", "TEDVici", "TEDTestSupport"]),
    ]
)
