// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Bitten",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bitten", targets: ["bitten"]),
        .executable(name: "bitten-bench", targets: ["bitten-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Hummingbird's own transport; named here for bitten-bench's HTTP client (no extra build).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // swift-nio's own dependency (already built): its Deque backs the socket and Redis job queues.
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The HTTP API's server interface is generated from its OpenAPI document (`make openapi`; the generated
        // code is committed, so builds never run the generator) and served through Hummingbird.
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
        // The Telegram front's HTTPS client (the Bot API) and its calls into Bitten's own HTTP API.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "ZeroMQ",
            dependencies: [
                "CZeroMQ", .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "BittenCore"),
        .target(
            name: "BittenServices",
            dependencies: [
                "BittenCore", "ZeroMQ", "Redis",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Storage/Scripts")]
        ),
        .target(
            name: "BittenDashboard",
            dependencies: [
                "BittenCore", "BittenServices", "Redis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["openapi-generator-config.yaml"],
            // openapi.yaml (the API's one description) and public/ (the dashboard page, its CSS and JS).
            resources: [.copy("Resources")]
        ),
        // The Telegram front (`bitten run telegram`): the Bot API over HTTPS, users' commands into Bitten's HTTP API.
        .target(
            name: "BittenTelegram",
            dependencies: [
                "BittenCore", "BittenServices", "Redis",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EASimulator",
            dependencies: [
                "BittenCore", "ZeroMQ", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The product: server, operator tools and the EA simulator. No C module, no benchmark.
        .executableTarget(
            name: "bitten",
            dependencies: [
                "BittenCore", "BittenServices", "BittenDashboard", "BittenTelegram", "EASimulator", "ZeroMQ", "Redis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The benchmarks (`make bench`): they start the `bitten` built beside them and measure it; the plain
        // libzmq references call libzmq directly.
        .executableTarget(
            name: "bitten-bench",
            dependencies: [
                "BittenCore", "BittenServices", "BittenDashboard", "EASimulator", "ZeroMQ", "Redis", "CZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(name: "BittenTestSupport", dependencies: ["BittenCore", "Redis"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "BittenTestSupport"]),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "BittenTestSupport"]),
        .testTarget(name: "BittenCoreTests", dependencies: ["BittenCore", "BittenTestSupport"]),
        .testTarget(
            name: "BittenTests",
            dependencies: [
                "bitten", "BittenServices", "BittenDashboard", "BittenTelegram", "EASimulator", "ZeroMQ", "Redis",
                "BittenTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                // In-process requests into the router (RouterClient); HummingbirdTesting would add AsyncHTTPClient.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ]
)
