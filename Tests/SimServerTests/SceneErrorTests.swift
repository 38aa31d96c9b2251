import Foundation
import PluginAPI
import Testing
@testable import SimEngine
@testable import SimServer

/// A broken scene stops start-up with one line naming the file, the place and the problem.
@Suite struct SceneErrorTests {
    static func startupError(_ scene: String) -> String? {
        var config = SimServerConfiguration()
        // No render threads unless a test asks (CameraTests: OSMesa, one backend per process): GL
        // contexts for every server would starve the other suites on 2 cores.
        config.renderBackend = .none
        config.scene = scene
        config.listen = "tcp://127.0.0.1:*"
        do {
            _ = try SimServer(configuration: config)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func manifestSyntaxError() throws {
        let e = try #require(Self.startupError("Scenes/test/bad_manifest"))
        #expect(e.hasPrefix("Scenes/test/bad_manifest/scene.json: "))
        #expect(e.contains("line 7") || e.contains("line 6"))
        #expect(!e.contains("\n"))
    }

    @Test func modelSyntaxError() throws {
        let e = try #require(Self.startupError("Scenes/test/broken_xml"))
        #expect(e.hasPrefix("Scenes/test/broken_xml/model.xml: "))
        #expect(e.lowercased().contains("line"))
        #expect(!e.contains("\n"))
    }

    @Test func missingModel() throws {
        let e = try #require(Self.startupError("Scenes/test/missing_model"))
        #expect(e == "Scenes/test/missing_model/scene.json: model: model file 'does_not_exist.xml' not found in Scenes/test/missing_model")
    }

    @Test func missingFolder() throws {
        #expect(Self.startupError("Scenes/nope") == "Scenes/nope: no such scene folder")
    }

    @Test func wrongTypeNamesTheKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-scene-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = try String(contentsOfFile: "Scenes/test/pendulum/scene.json", encoding: .utf8)
            .replacingOccurrences(of: "\"decimation\": 1", with: "\"decimation\": \"one\"")
        try manifest.write(to: dir.appendingPathComponent("scene.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: "Scenes/test/pendulum/model.xml", toPath: dir.appendingPathComponent("model.xml").path)
        let e = try #require(Self.startupError(dir.path))
        #expect(e.contains("scene.json: decimation: expected Int"))
    }

    @Test func unknownTask() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robosim-scene-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = try String(contentsOfFile: "Scenes/test/pendulum/scene.json", encoding: .utf8)
            .replacingOccurrences(of: "\"task\": \"joint_control\"", with: "\"task\": \"juggling\"")
        try manifest.write(to: dir.appendingPathComponent("scene.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: "Scenes/test/pendulum/model.xml", toPath: dir.appendingPathComponent("model.xml").path)
        let e = try #require(Self.startupError(dir.path))
        #expect(e.contains("scene.json: task: no task plugin 'juggling' (available: cartpole, joint_control"))
    }
}
