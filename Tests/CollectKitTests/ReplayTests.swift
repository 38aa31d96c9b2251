import ClientKit
import Foundation
import Messaging
import Parquet
import TestSupport
import Testing

@testable import CollectKit

extension Tag {
    /// Tests that start another process.
    @Tag static var process: Self
}

/// Records datasets with the collector against a real `sim-server` (the one beside the test bundle)
/// and replays them on another server with another env count.
///
/// Scene: `Scenes/test/tbar_push_short`, the tbar_push model and task with 2 s episodes (100
/// control steps) and no cameras.
@Suite("sim-collect replay", .tags(.process), .serialized)
struct ReplayTests {
    static let scene = PythonScript.repositoryRoot.appendingPathComponent("Scenes/test/tbar_push_short").path

    /// Records `episodes` episodes with `policy` on a fresh server of `envs` envs into a new folder.
    static func record(policy kind: PolicyKind, episodes: Int, envs: Int, fps: Double?, seed: UInt64,
                       task: String = "push the T-bar into the slot", actionNoise: Double = 0) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("replay-test-\(UUID().uuidString)")
        let server = try ServerProcess(scene: scene, envs: envs, extraArguments: ["--render-backend", "none"])
        defer { server.stop() }
        let client = try ServiceClient(server: server.address, timeout: 30)
        let d = try client.describe()
        var policy = try makePolicy(kind, task: TaskInfo(describe: d), envs: Int(d.envCount), seed: seed)
        if actionNoise > 0 { policy = try NoisyPolicy(policy, std: actionNoise, task: TaskInfo(describe: d), envs: Int(d.envCount), seed: seed) }
        let spec = Collector.spec(describe: d, policy: policy, format: .lerobotV30, fps: fps, codec: .h264)
        let writer = try LeRobotWriter(root: root, spec: spec, resume: false, encoder: VideoEncoder(codec: .h264))
        var options = Collector.Options()
        options.episodes = episodes
        options.fps = fps
        options.seed = seed
        options.task = task
        let result = try Collector(client: client, describe: d, options: options, writer: writer, policy: policy).run { _ in }
        #expect(result.written == episodes)
        return root
    }

    /// Replays `selection` of the dataset at `root` on a fresh server of `envs` envs.
    static func replay(_ root: URL, envs: Int, selection: [Int]? = nil) throws -> [ReplayResult] {
        let server = try ServerProcess(scene: scene, envs: envs, extraArguments: ["--render-backend", "none"])
        defer { server.stop() }
        return try Replayer(root: root).run(client: try ServiceClient(server: server.address, timeout: 30), selection: selection)
    }

    /// Rewrites episode `episode`'s data file with `change` applied to the flat values of `column`.
    static func tamper(_ root: URL, episode: Int, column name: String, _ change: (inout [Float], Int) -> Void) throws {
        // Episodes are packed several to a file: change `episode`'s rows only (`change` sees them alone).
        let located = try #require(try Replayer(root: root).episodes.first { $0.index == episode })
        let url = root.appendingPathComponent(located.dataFile)
        let table = try ParquetReader.read(contentsOf: url)
        let first = try #require(table.column("index")?.integers?.firstIndex(of: Int64(located.from)))
        let columns = try table.columns.map { column -> ParquetColumn in
            guard column.name == name else { return column }
            var values = try #require(column.floats)
            let width = values.count / table.rowCount
            let rows = first * width..<(first + located.length) * width
            var own = Array(values[rows])
            change(&own, width)
            values.replaceSubrange(rows, with: own)
            return width == 1 ? .float(name, values) : .floatList(name, flat: values, width: width)
        }
        try ParquetWriter.write(columns, to: url, metadata: table.metadata)
    }

    @Test("16 strategist episodes (end-effector targets) replay bit for bit on another env count; tampering is caught")
    func strategistEpisodes() async throws {
        try await onOwnThread {
            let root = try Self.record(policy: .strategist, episodes: 16, envs: 4, fps: nil, seed: 7)
            defer { try? FileManager.default.removeItem(at: root) }

            // What replay needs is kept per episode.
            let state = try JSONDecoder().decode(LeRobotWriter.State.self, from: Data(contentsOf: root.appendingPathComponent(LeRobotWriter.stateFile)))
            #expect(state.episodes.count == 16)
            #expect(state.episodes.allSatisfy { $0.scene == "tbar_push_short" && $0.input == .endEffector && $0.seedIndex == $0.env && $0.runSeed == 7 })
            #expect(state.episodes.allSatisfy { !($0.serverVersion ?? "").isEmpty })
            #expect(Set(state.episodes.map { "\($0.env)/\($0.envEpisode)" }).count == 16)
            #expect(state.episodes.contains { $0.envEpisode > 0 })

            let results = try Self.replay(root, envs: 3)
            #expect(results.map(\.episode) == Array(0..<16))
            for result in results { #expect(result.matches, "\(result)") }
            #expect(results.map(\.frames) == state.episodes.map(\.length))

            // A changed action: what follows departs from the recording.
            try Self.tamper(root, episode: 5, column: "action") { values, width in values[10 * width] += 0.02 }
            // A changed state (the T-bar's, in observation.environment_state): caught at that very frame and element.
            try Self.tamper(root, episode: 9, column: "observation.environment_state") { values, width in
                values[20 * width + 1] = values[20 * width + 1].nextUp
            }
            let tampered = try Self.replay(root, envs: 2, selection: [4, 5, 9])
            #expect(tampered.map(\.episode) == [4, 5, 9])
            #expect(tampered[0].matches, "\(tampered[0])")
            let afterAction = try #require(tampered[1].mismatch, "a changed action went unnoticed")
            // The frame's own reward already follows the changed action; the next state does at the latest.
            #expect((afterAction.frame == 10 && afterAction.feature == "next.reward")
                    || (afterAction.frame == 11 && afterAction.feature.hasPrefix("observation.")), "\(tampered[1])")
            let atState = try #require(tampered[2].mismatch, "a changed state went unnoticed")
            #expect(atState.frame == 20)
            #expect(state.spec.environmentStateNames.first == "tbar_x")
            #expect(atState.feature == "observation.environment_state[\(state.spec.environmentStateNames[1])]")
        }
    }

    @Test("random task actions held for 2 control steps a frame (fps 25) replay bit for bit; a changed reward is caught")
    func heldActions() async throws {
        try await onOwnThread {
            let root = try Self.record(policy: .random, episodes: 6, envs: 3, fps: 25, seed: 11)
            defer { try? FileManager.default.removeItem(at: root) }
            let results = try Self.replay(root, envs: 4)
            #expect(results.count == 6)
            for result in results { #expect(result.matches, "\(result)") }
            try Self.tamper(root, episode: 2, column: "next.reward") { values, _ in values[3] = values[3].nextDown }
            let tampered = try Self.replay(root, envs: 1, selection: [2])
            #expect(tampered.first?.mismatch?.frame == 3)
            #expect(tampered.first?.mismatch?.feature == "next.reward")
        }
    }

    @Test("actions with --action-noise are recorded as sent: they replay bit for bit")
    func noisyActions() async throws {
        try await onOwnThread {
            let root = try Self.record(policy: .random, episodes: 4, envs: 2, fps: nil, seed: 5, actionNoise: 0.5)
            defer { try? FileManager.default.removeItem(at: root) }
            let results = try Self.replay(root, envs: 3)
            #expect(results.count == 4)
            for result in results { #expect(result.matches, "\(result)") }
        }
    }
}
