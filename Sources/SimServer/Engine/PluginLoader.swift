import Foundation
import Logging
import PathSafety
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
package enum PluginLoader {
    package typealias VersionFunction = @convention(c) () -> Int32
    package typealias RegisterFunction = @convention(c) (UnsafeMutableRawPointer) -> Void

    /// Loads every plugin library (`lib*.so` exporting the entry points) in `directory`; other
    /// libraries there (a plugin's own dependencies, PluginAPI itself) are skipped. A folder with
    /// no plugin at all is an error: the user named it for a reason. Only files of the folder itself
    /// are loaded: a library that is a symbolic link to a file outside it is refused, and each one
    /// is opened by its real path (always with a `/`, so `dlopen` never searches the library path).
    package static func loadAll(in directory: String, into registry: PluginRegistry, logger: Logger) throws {
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw PluginLoadError(description: "\(directory): cannot list the plugin folder (\(error.localizedDescription))")
        }
        guard let folder = SafePath.resolved(directory) else {
            throw PluginLoadError(description: "\(directory): cannot resolve the plugin folder")
        }
        var loaded = 0
        for file in files.sorted() where file.hasPrefix("lib") && file.hasSuffix(".so") && file != "libPluginAPI.so" {
            let path = directory + "/" + file
            guard let real = SafePath.resolved(path) else {
                throw PluginLoadError(description: "\(path): a symbolic link to nothing; plugins load only from files in the --plugin-path folder \(directory)")
            }
            guard SafePath.isInside(real, folder: folder) else {
                throw PluginLoadError(description: "\(path): a symbolic link to \(real), outside the plugin folder \(directory); "
                                      + "plugins load only from files in the --plugin-path folders")
            }
            if try load(real, into: registry, logger: logger) { loaded += 1 }
        }
        if loaded == 0 { throw PluginLoadError(description: "\(directory): no RoboSim plugin library (lib*.so exporting robosim_register_plugins) found") }
    }

    /// Checks a plugin name from a scene manifest (`robot`, `task`): a registered name, never a path.
    /// Plugins come only from the built-in set and the `--plugin-path` folders (`folders`), so a name
    /// with `/`, `..`, a NUL byte or an absolute path is refused here, naming the value and the folders.
    package static func checkName(_ name: String, place: String, manifest: String, folders: [String]) throws(SceneError) {
        do { try SafePath.component(name, in: "", what: place) } catch {
            let from = folders.isEmpty ? "the built-in plugins (no --plugin-path given)" : "the built-in plugins and the --plugin-path folders \(folders.joined(separator: ", "))"
            throw SceneError(file: manifest, place: place,
                             problem: "plugin name '\(PathEscapeError.printable(name))' is refused (\(error.reason)): a scene names a registered \(place) plugin, not a file; "
                             + "plugins load only from \(from)")
        }
    }

    /// Loads one library, checks its API version, and lets it register its plugins. Returns false
    /// (and unloads it) when the library is not a RoboSim plugin.
    @discardableResult
    package static func load(_ path: String, into registry: PluginRegistry, logger: Logger) throws -> Bool {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginLoadError(description: "\(path): \(String(cString: dlerror()))")
        }
        guard let versionSymbol = dlsym(handle, "robosim_plugin_api_version") else {
            logger.debug("not a plugin, skipped", metadata: ["sim.plugin": "\(path)"])
            dlclose(handle)
            return false
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
        return true
    }
}
