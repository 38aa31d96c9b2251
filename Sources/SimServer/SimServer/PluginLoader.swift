import Foundation
import Logging
import PluginAPI
#if canImport(Glibc)
import Glibc
#endif

/// A plugin library that cannot be used: a one-line reason naming the file.
public struct PluginLoadError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Loads external plugins: Swift dynamic libraries (`lib*.so`) exporting
/// `robosim_plugin_api_version` and `robosim_register_plugins` (see docs/plugins.md).
enum PluginLoader {
    typealias VersionFunction = @convention(c) () -> Int32
    typealias RegisterFunction = @convention(c) (UnsafeMutableRawPointer) -> Void

    /// Loads every `lib*.so` in `directory`.
    static func loadAll(in directory: String, into registry: PluginRegistry, logger: Logger) throws {
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw PluginLoadError(description: "\(directory): cannot list plugin folder (\(error.localizedDescription))")
        }
        for file in files.sorted() where file.hasPrefix("lib") && file.hasSuffix(".so") {
            try load(URL(fileURLWithPath: directory).appendingPathComponent(file).path, into: registry, logger: logger)
        }
    }

    /// Loads one library, checks its API version, and lets it register its plugins.
    static func load(_ path: String, into registry: PluginRegistry, logger: Logger) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginLoadError(description: "\(path): \(String(cString: dlerror()))")
        }
        guard let versionSymbol = dlsym(handle, "robosim_plugin_api_version") else {
            throw PluginLoadError(description: "\(path): not a RoboSim plugin (no robosim_plugin_api_version symbol)")
        }
        let version = unsafeBitCast(versionSymbol, to: VersionFunction.self)()
        guard version == PluginAPIVersion.current else {
            throw PluginLoadError(description: "\(path): built for plugin API \(version), this server has API \(PluginAPIVersion.current); rebuild the plugin")
        }
        guard let registerSymbol = dlsym(handle, "robosim_register_plugins") else {
            throw PluginLoadError(description: "\(path): no robosim_register_plugins symbol")
        }
        let before = Set(registry.tasks.keys)
        unsafeBitCast(registerSymbol, to: RegisterFunction.self)(registry.opaque)
        let added = Set(registry.tasks.keys).subtracting(before)
        logger.info("plugin loaded", metadata: ["sim.plugin": "\(path)", "sim.tasks": "\(added.sorted())"])
    }
}
