// swift-tools-version: 6.2
import PackageDescription

/// scripts/setup.sh installs MuJoCo's C library under /usr/local (headers in /usr/local/include,
/// which the compilers search; Swift's linker does not search /usr/local/lib).
let mujocoLinkerSettings: [LinkerSetting] = [.linkedLibrary("mujoco"), .unsafeFlags(["-L/usr/local/lib"])]

let package = Package(
    name: "RoboSim",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Messaging", targets: ["Messaging"]),
        .library(name: "SimEngine", targets: ["SimEngine"]),
        .library(name: "SimServer", targets: ["SimServer"]),
        .library(name: "ClientKit", targets: ["ClientKit"]),
        .library(name: "LLMKit", targets: ["LLMKit"]),
        // Products for the fuzz package (Fuzz/Package.swift depends on this one by path).
        .library(name: "TrainKit", targets: ["TrainKit"]),
        .library(name: "DeployKit", targets: ["DeployKit"]),
        .library(name: "StrategistKit", targets: ["StrategistKit"]),
        .library(name: "Parquet", targets: ["Parquet"]),
        .library(name: "RewardLanguage", targets: ["RewardLanguage"]),
        .library(name: "PathSafety", targets: ["PathSafety"]),
        .executable(name: "sim-server", targets: ["sim-server"]),
        .executable(name: "simctl", targets: ["simctl"]),
        .executable(name: "sim-strategist", targets: ["sim-strategist"]),
        .executable(name: "sim-collect", targets: ["sim-collect"]),
        .executable(name: "sim-bench", targets: ["sim-bench"]),
        .executable(name: "sim-train", targets: ["sim-train"]),
        .executable(name: "sim-deploy", targets: ["sim-deploy"]),
        .executable(name: "sim-bridge", targets: ["sim-bridge"]),
        .executable(name: "sim-mcp", targets: ["sim-mcp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // SHA-256 and HMAC for AWS Signature Version 4 (StrategistKit's Bedrock backend).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // SQLite for sim-deploy's job and execution state (one transaction per transition).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The live viewer: HTTP and WebSocket (Foxglove's protocol) on one port.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        // sim-mcp: the Model Context Protocol SDK (server, tools, stdio transport).
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        // PluginAPI is its own package with a dynamic product: the server and plugin libraries share it.
        .package(path: "Sources/Plugins/PluginAPI"),
    ],
    targets: [
        // System-library shims: each is imported by exactly one Swift module.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        // Futex and atomics on shared memory (Messaging's same-host step channel).
        .target(name: "CSharedMemory", path: "Sources/CSharedMemory"),
        // MuJoCo 4.0.x as scripts/setup.sh installs it (/usr/local: the compiler searches its include
        // folder, Swift's linker does not search its lib folder).
        .target(
            name: "CMuJoCo",
            path: "Sources/CMuJoCo",
            linkerSettings: mujocoLinkerSettings
        ),

        // Messaging: ROS 2-style topics and services over ZeroMQ with protobuf payloads.
        .target(
            name: "Messaging",
            dependencies: [
                "CZeroMQ",
                "CSharedMemory",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Messaging"
        ),

        // The reward expression language (CONTRACT.md): parser, checks and a bounded evaluator. Pure Swift,
        // shared by the engine (which evaluates) and clients (which check before sending).
        .target(name: "RewardLanguage", path: "Sources/RewardLanguage"),

        // Paths built from names that come from outside stay inside their folder (SafePath). Pure
        // Swift; shared by the engine (plugin folders) and the clients (datasets, outputs, releases).
        .target(name: "PathSafety", path: "Sources/PathSafety"),

        // Plugins compiled into the server.
        .target(
            name: "BuiltinPlugins",
            dependencies: [.product(name: "PluginAPI", package: "PluginAPI")],
            path: "Sources/Plugins/BuiltinPlugins"
        ),

        // The engine: scenes, worlds (one mjData per env), robot control, motion and safety, cameras
        // and render workers, plugin loading. Imports the MuJoCo shim and PluginAPI, never Messaging:
        // typed commands in, plain Swift values out.
        .target(
            name: "SimEngine",
            dependencies: [
                "CMuJoCo",
                "BuiltinPlugins",
                "RewardLanguage",
                "PathSafety",
                .product(name: "PluginAPI", package: "PluginAPI"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/SimServer/Engine"
        ),
        // The server: services, leases, command inbox, the topic and camera scheduler, messages.
        // Imports Messaging and the engine, never the MuJoCo shim.
        .target(
            name: "SimServer",
            dependencies: [
                "Messaging",
                "SimEngine",
                "RewardLanguage",
                .product(name: "PluginAPI", package: "PluginAPI"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/SimServer/Server"
        ),
        .executableTarget(
            name: "sim-server",
            dependencies: [
                "SimEngine",
                "SimServer",
                "Viewer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/SimServer/sim-server"
        ),

        // The live viewer: a Foxglove WebSocket bridge (foxglove.websocket.v1) and the built-in page, on
        // one port; served by sim-server --viewer or by sim-bridge.
        .target(
            name: "Viewer",
            dependencies: [
                "Messaging",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Viewer"
        ),
        .executableTarget(
            name: "sim-bridge",
            dependencies: [
                "Viewer", "Messaging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Clients/sim-bridge"
        ),

        // Clients: the shared client library and one thin executable per client.
        .target(
            name: "ClientKit",
            dependencies: [
                "Messaging",
                "PathSafety",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Clients/ClientKit"
        ),
        .executableTarget(
            name: "simctl",
            dependencies: [
                "ClientKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Clients/simctl"
        ),
        // The strategist as a library: LLM backends (Bedrock Converse, OpenAI-compatible HTTP) in LLM/;
        // T-bar geometry, workspace summary, strategy schema and validation, the offline pushing
        // planner and the waypoint executor in Planning/; the run over topics in Run/.
        // LLM backends (Bedrock, OpenAI-compatible) and their command-line options: the strategist's and
        // the reward search's.
        .target(
            name: "LLMKit",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Clients/LLMKit"
        ),
        .target(
            name: "StrategistKit",
            dependencies: [
                "Messaging", "LLMKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Clients/StrategistKit"
        ),
        // A pure-Swift Parquet writer (Thrift compact metadata, PLAIN pages, Snappy) for LeRobot datasets.
        .target(name: "Parquet", path: "Sources/Clients/Parquet"),

        .executableTarget(
            name: "sim-strategist",
            dependencies: [
                "ClientKit", "Messaging", "StrategistKit", "LLMKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Clients/sim-strategist"
        ),

        // The data collector as a library (LeRobot writer, stats, video, policies, collection loop) and its executable.
        .target(
            name: "CollectKit",
            dependencies: ["ClientKit", "Messaging", "Parquet", "StrategistKit"],
            path: "Sources/Clients/CollectKit"
        ),
        .executableTarget(
            name: "sim-collect",
            dependencies: [
                "ClientKit", "CollectKit", "Messaging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Clients/sim-collect"
        ),

        // The trainer as a library (PPO, networks, checkpoints, evaluation) and its executable.
        .target(
            name: "TrainKit",
            dependencies: ["ClientKit", "Messaging", "RewardLanguage", "LLMKit", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Clients/TrainKit",
            // The learner's kernels are SIMD code that only optimized builds make fast: optimized in
            // debug builds too (the tests train), without bounds checks in release.
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                            .unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        .executableTarget(
            name: "sim-train",
            dependencies: [
                "ClientKit", "TrainKit", "Messaging", "LLMKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Clients/sim-train"
        ),

        // The deployer: a registry of signed releases, jobs and executions in SQLite (the rollout,
        // abort and timeout rules), the deployer's services and the robot agents.
        .target(
            name: "DeployKit",
            dependencies: [
                "ClientKit", "TrainKit", "Messaging",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Clients/DeployKit",
            // Swift 6.3's optimizer (loop-invariant code motion's alias analysis) runs for more than
            // 30 minutes on this module in release builds; the deployer waits on disks and sockets,
            // not on code, so it is compiled unoptimized.
            swiftSettings: [.unsafeFlags(["-Onone"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "sim-deploy",
            dependencies: ["DeployKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Clients/sim-deploy"
        ),

        // The MCP server as a library (the simulator's tools, a PNG encoder, stdio and streamable HTTP
        // serving) and its thin executable.
        .target(
            name: "MCPKit",
            dependencies: [
                "ClientKit", "Messaging", "StrategistKit",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Clients/MCPKit"
        ),
        .executableTarget(
            name: "sim-mcp",
            dependencies: [
                "MCPKit", "ClientKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Clients/sim-mcp"
        ),

        // Benchmarks, and the raw MuJoCo C loop they compare the engine with.
        .target(
            name: "CBenchReference",
            path: "Benchmarks/CBenchReference",
            linkerSettings: mujocoLinkerSettings + [.linkedLibrary("pthread")]
        ),
        .executableTarget(
            name: "sim-bench",
            dependencies: [
                "Messaging",
                "ClientKit",
                "DeployKit",
                "CZeroMQ",
                "SimEngine",
                "SimServer",
                "TrainKit",
                "CBenchReference",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/sim-bench"
        ),

        // Shared by the test targets: Python reference scripts, blocking work off the cooperative pool,
        // an in-memory log handler (LogRecorder).
        .target(name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
        .testTarget(name: "PathSafetyTests", dependencies: ["PathSafety"], path: "Tests/PathSafetyTests"),
        .testTarget(name: "RewardLanguageTests", dependencies: ["RewardLanguage", "TestSupport"], path: "Tests/RewardLanguageTests"),
        .testTarget(name: "ViewerTests", dependencies: ["Viewer", "ClientKit", "Messaging"], path: "Tests/ViewerTests"),
        .testTarget(name: "DeployKitTests", dependencies: ["DeployKit", "TrainKit"], path: "Tests/DeployKitTests"),
        .testTarget(name: "TrainKitTests", dependencies: ["TrainKit", "LLMKit", "RewardLanguage", "Messaging", "ClientKit"], path: "Tests/TrainKitTests"),
        .testTarget(
            name: "MessagingTests",
            dependencies: [
                "Messaging", "CZeroMQ", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tests/MessagingTests"
        ),
        .testTarget(
            name: "SimServerTests",
            dependencies: [
                "SimEngine", "SimServer", "Messaging", "BuiltinPlugins", "ClientKit", "StrategistKit", "TestSupport", "PathSafety",
                .product(name: "PluginAPI", package: "PluginAPI"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/SimServerTests"
        ),
        .testTarget(
            name: "StrategistKitTests",
            dependencies: ["StrategistKit", "LLMKit", "TestSupport", .product(name: "Logging", package: "swift-log")],
            path: "Tests/StrategistKitTests"
        ),
        .testTarget(
            name: "CollectKitTests",
            dependencies: ["CollectKit", "ClientKit", "Messaging", "Parquet", "TestSupport"],
            path: "Tests/CollectKitTests"
        ),
        .testTarget(name: "MCPKitTests", dependencies: ["MCPKit"], path: "Tests/MCPKitTests"),
        .testTarget(name: "ParquetTests", dependencies: ["Parquet", "TestSupport"], path: "Tests/ParquetTests", exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
