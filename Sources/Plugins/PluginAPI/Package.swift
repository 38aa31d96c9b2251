// swift-tools-version: 6.2
// PluginAPI lives in its own package with a dynamic library product, so that sim-server and every
// plugin library share one copy of its types (a static copy in each would make `as? TaskPlugin`
// fail across the dynamic-library boundary).
import PackageDescription

let package = Package(
    name: "PluginAPI",
    products: [
        .library(name: "PluginAPI", type: .dynamic, targets: ["PluginAPI"])
    ],
    targets: [
        .target(name: "PluginAPI")
    ],
    swiftLanguageModes: [.v6]
)
