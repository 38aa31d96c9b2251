// swift-tools-version: 6.2
// libFuzzer targets for RoboSim's input paths (docs/fuzzing.md). Not part of CI: scripts/fuzz.sh builds
// them with `-sanitize=fuzzer,address` into .build-fuzz and runs each for a stated time.
import Foundation
import PackageDescription

/// The root package's identity: the name of the folder above this one (the checkout's name).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

/// One executable per fuzz target, `Sources/<name>/main.swift`: `LLVMFuzzerTestOneInput` and a
/// top-level `runFuzzer(...)` (FuzzSupport) that hands it to libFuzzer's driver.
func fuzzTarget(_ name: String, _ products: [String], _ others: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: root) } + others,
        path: "Sources/\(name)"
    )
}

let package = Package(
    name: "RoboSimFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // Already dependencies of the root package (same versions); named to be imported here.
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // libFuzzer's driver entry (declared for Swift) and the helpers every target shares.
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver"], path: "Sources/FuzzSupport"),
        fuzzTarget("fuzz-reward", ["RewardLanguage"]),
        fuzzTarget("fuzz-scene", ["SimEngine"]),
        fuzzTarget("fuzz-requests", ["SimServer", "SimEngine", "Messaging"], [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "Logging", package: "swift-log"),
        ]),
        fuzzTarget("fuzz-mcap", ["ClientKit"]),
        fuzzTarget("fuzz-checkpoint", ["TrainKit"]),
        fuzzTarget("fuzz-train-job", ["TrainKit"]),
        fuzzTarget("fuzz-parquet", ["Parquet"]),
        fuzzTarget("fuzz-deploy-job", ["DeployKit", "Messaging"]),
    ],
    swiftLanguageModes: [.v6]
)
