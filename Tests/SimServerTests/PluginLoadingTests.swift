import Foundation
import Logging
import PathSafety
import PluginAPI
import Testing
@testable import SimEngine
@testable import SimServer

/// External plugins: the sample plugin package is built as a real dynamic library and loaded.
@Suite(.serialized) struct PluginLoadingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Builds Examples/SamplePlugin (against Sources/Plugins/PluginAPI) and returns its products folder.
    static func buildSample() throws -> String {
        let scratch = root + "/.build-plugin-sample"
        let build = try run(["swift", "build", "--package-path", "Examples/SamplePlugin", "--scratch-path", scratch])
        #expect(build.status == 0, "\(build.output)")
        return scratch + "/debug"
    }

    static func server(scene: String, plugins: [String]) throws -> SimServer {
        var config = SimServerConfiguration()
        // No render threads unless a test asks (CameraTests: OSMesa, one backend per process): GL
        // contexts for every server would starve the other suites on 2 cores.
        config.renderBackend = .none
        config.scene = root + "/" + scene
        config.listen = "tcp://127.0.0.1:*"
        config.mode = .lockstep
        config.pluginPaths = plugins
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return try SimServer(configuration: config, logger: logger)
    }

    @Test func sampleDynamicPluginIsBuiltLoadedAndSteps() throws {
        let folder = try Self.buildSample()
        #expect(FileManager.default.fileExists(atPath: folder + "/libSampleTaskPlugin.so"))
        let server = try Self.server(scene: "Scenes/test/pendulum_hold", plugins: [folder])
        let world = server.world
        #expect(type(of: world.task).name == "pendulum_hold")
        #expect(world.observationSize == 3 && world.actionSize == 1)
        #expect(world.task.rewardTerms.map(\.name) == ["error", "effort"])
        // Targets come from the plugin's seeded reset: different per env, within the manifest range.
        let targets = world.envs.map { $0.observation[2] }
        #expect(Set(targets).count == world.envs.count && targets.allSatisfy { abs($0) <= 1 })
        world.step(Array(0..<world.envs.count), actions: [Double](repeating: 0.5, count: world.envs.count))
        for env in world.envs {
            #expect(env.observation[1] > 0)   // positive torque turned the pendulum
            #expect(abs(env.reward - (-abs(env.observation[0]) - 0.01 * 0.25)) < 1e-9)
        }
        // Reset ranges changed at run time reach the plugin through its EnvView at the next reset.
        world.setResetRanges(ResetRanges(["target": 0.3...0.3, "angle": -0.1...(-0.1)]))
        world.reset(Array(0..<world.envs.count), seed: nil)
        for env in world.envs {
            #expect(env.observation[2] == 0.3)                      // target
            #expect(abs(env.observation[0] - 0.4) < 1e-12)         // target - angle
        }
    }

    @Test func mismatchedAPIVersionIsRefusedWithAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-plugin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "int robosim_plugin_api_version(void) { return 999; }\nvoid robosim_register_plugins(void *r) {}\n"
            .write(toFile: dir + "/old.c", atomically: true, encoding: .utf8)
        let cc = try Self.run(["cc", "-shared", "-fPIC", "-o", dir + "/libOldPlugin.so", dir + "/old.c"])
        #expect(cc.status == 0, "\(cc.output)")
        do {
            _ = try Self.server(scene: "Scenes/test/pendulum", plugins: [dir])
            Issue.record("loaded a plugin built for API 999")
        } catch {
            #expect("\(error)" == "\(dir)/libOldPlugin.so: built for plugin API 999, this server has API \(PluginAPIVersion.current); rebuild the plugin")
        }
    }

    @Test func folderWithoutPluginsOrMissingIsAnError() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-plugin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: PluginLoadError.self) { try Self.server(scene: "Scenes/test/pendulum", plugins: [empty]) }
        #expect(throws: PluginLoadError.self) { try Self.server(scene: "Scenes/test/pendulum", plugins: [empty + "/nope"]) }
    }

    /// A copy of Scenes/test/pendulum whose manifest names `robot` and `task` as given.
    static func pendulumScene(robot: String = "pendulum", task: String) throws -> (folder: String, cleanup: () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-scene-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: root + "/Scenes/test/pendulum/model.xml", toPath: dir + "/model.xml")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/Scenes/test/pendulum/scene.json"))) as! [String: Any]
        manifest["robot"] = robot
        manifest["task"] = task
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: dir + "/scene.json"))
        return (dir, { try? FileManager.default.removeItem(atPath: dir) })
    }

    static func serverError(scene: String, plugins: [String] = []) -> String? {
        var config = SimServerConfiguration()
        config.renderBackend = .none
        config.scene = scene
        config.listen = "tcp://127.0.0.1:*"
        config.pluginPaths = plugins
        do { _ = try SimServer(configuration: config, logger: Logger(label: "test")); return nil } catch { return "\(error)" }
    }

    @Test(arguments: [("task", "../../evil"), ("task", "/tmp/libevil.so"), ("robot", "plugins/libevil"), ("robot", ".."), ("task", "a\0b")])
    func manifestPluginNamesThatArePathsAreRefused(place: String, name: String) throws {
        let scene = try place == "task" ? Self.pendulumScene(task: name) : Self.pendulumScene(robot: name, task: "joint_control")
        defer { scene.cleanup() }
        let error = Self.serverError(scene: scene.folder, plugins: ["/opt/plugins"])
        let shown = name.replacingOccurrences(of: "\0", with: "\\0")
        #expect(error?.hasPrefix("\(scene.folder)/scene.json: \(place): plugin name '\(shown)' is refused (") == true, "\(error ?? "started")")
        #expect(error?.hasSuffix("a scene names a registered \(place) plugin, not a file; plugins load only from the built-in plugins "
                                 + "and the --plugin-path folders /opt/plugins") == true, "\(error ?? "started")")
        // A plain name that no plugin registers is the registry's usual error.
        let unknown = try Self.pendulumScene(task: "evil")
        defer { unknown.cleanup() }
        #expect(Self.serverError(scene: unknown.folder)?.contains("task: no task plugin 'evil' (available: ") == true)
    }

    @Test func pluginLibraryLinkedFromOutsideTheFolderIsRefused() throws {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-plugin-\(UUID().uuidString)").path
        let (folder, elsewhere) = (top + "/plugins", top + "/elsewhere")
        for d in [folder, elsewhere] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(atPath: top) }
        try "int robosim_plugin_api_version(void) { return 999; }\nvoid robosim_register_plugins(void *r) {}\n"
            .write(toFile: elsewhere + "/evil.c", atomically: true, encoding: .utf8)
        let cc = try Self.run(["cc", "-shared", "-fPIC", "-o", elsewhere + "/libEvil.so", elsewhere + "/evil.c"])
        #expect(cc.status == 0, "\(cc.output)")
        try FileManager.default.createSymbolicLink(atPath: folder + "/libEvil.so", withDestinationPath: elsewhere + "/libEvil.so")
        let real = try #require(SafePath.resolved(elsewhere + "/libEvil.so"))
        #expect(Self.serverError(scene: Self.root + "/Scenes/test/pendulum", plugins: [folder])
                == "\(folder)/libEvil.so: a symbolic link to \(real), outside the plugin folder \(folder); plugins load only from files in the --plugin-path folders")
        // A link to nothing is refused too.
        try FileManager.default.removeItem(atPath: folder + "/libEvil.so")
        try FileManager.default.createSymbolicLink(atPath: folder + "/libEvil.so", withDestinationPath: elsewhere + "/missing.so")
        #expect(Self.serverError(scene: Self.root + "/Scenes/test/pendulum", plugins: [folder])?.contains("a symbolic link to nothing") == true)
        // The same library inside the folder, and a link to it there, get as far as dlopen (and the API check).
        try FileManager.default.removeItem(atPath: folder + "/libEvil.so")
        try FileManager.default.moveItem(atPath: elsewhere + "/libEvil.so", toPath: folder + "/libReal.so")
        try FileManager.default.createSymbolicLink(atPath: folder + "/libAlias.so", withDestinationPath: folder + "/libReal.so")
        let inside = Self.serverError(scene: Self.root + "/Scenes/test/pendulum", plugins: [folder])
        #expect(inside?.hasSuffix(": built for plugin API 999, this server has API \(PluginAPIVersion.current); rebuild the plugin") == true, "\(inside ?? "")")
    }
}
