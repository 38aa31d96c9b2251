// swift-tools-version: 6.2
// A sample external task plugin: a dynamic library that sim-server loads with --plugin-path.
// Build: swift build -c release --package-path Examples/SamplePlugin
// Run:   sim-server Scenes/test/pendulum_hold --plugin-path Examples/SamplePlugin/.build/release
import PackageDescription

let package = Package(
    name: "SamplePlugin",
    products: [
        .library(name: "SampleTaskPlugin", type: .dynamic, targets: ["SampleTaskPlugin"])
    ],
    dependencies: [
        .package(path: "../../Sources/Plugins/PluginAPI")
    ],
    targets: [
        .target(name: "SampleTaskPlugin", dependencies: [.product(name: "PluginAPI", package: "PluginAPI")])
    ],
    swiftLanguageModes: [.v6]
)
