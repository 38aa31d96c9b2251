import ClientKit
import Foundation
import Testing
@testable import TrainKit

/// PPO from pixels end to end on `Scenes/object_tracker_pixels`, against a `sim-server` process
/// (the one built beside the tests, one render thread): a few updates, twice with the same seed,
/// then evaluations of the checkpoint and of random actions.
@Suite(.serialized) struct PixelTrainingTests {
    static let scene = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scenes/object_tracker_pixels").path

    /// Two render threads: which thread draws which env, and what it drew before, must not change
    /// an image (`imagesDoNotDependOnWhoDrewThemOrWhatCameBefore`).
    static let twoRenderThreads = ["--render-threads", "2"]

    /// 2 envs, 2 updates of 16 steps, a small CNN.
    func train(seed: UInt64, out: URL) throws -> TrainSummary {
        let server = try ServerProcess(scene: Self.scene, envs: 2, seed: seed, extraArguments: Self.twoRenderThreads)
        defer { server.stop() }
        let env = try VectorEnvGroup(addresses: [server.address], total: 2, options: .init(clientName: "pixel-test"))
        defer { env.close() }
        var options = TrainOptions(output: out)
        options.pixels = true
        options.totalSteps = 64
        options.seed = seed
        options.reward = "closeness + 10 * max(progress, 0) + 50 * success"
        options.ppo.steps = 16
        options.ppo.epochs = 2
        options.ppo.minibatches = 2
        options.ppo.hidden = [16]
        options.ppo.convolutions = [Convolution(channels: 8, kernel: 5, stride: 2), Convolution(channels: 8, kernel: 3, stride: 2)]
        options.ppo.entropyCoefficient = 0.01
        return try Training.run(env: env, options: options, evalEpisodes: 0) { _ in }.0
    }

    @Test func trainsFromPixelsDeterministicallyAndEvaluates() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pixels-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try train(seed: 3, out: root.appendingPathComponent("a"))
        _ = try train(seed: 3, out: root.appendingPathComponent("b"))
        #expect(a.updates == 2 && a.envSteps == 64)
        let metrics = try (["a", "b"]).map { try String(contentsOf: root.appendingPathComponent("\($0)/metrics.csv"), encoding: .utf8) }
        #expect(metrics[0] == metrics[1], "same seed, same curve")
        #expect(metrics[0].split(separator: "\n").count == 3)  // header and 2 updates
        let bytes = try (["a", "b"]).map { try Data(contentsOf: root.appendingPathComponent("\($0)/checkpoint.safetensors")) }
        #expect(bytes[0] == bytes[1], "same seed, same checkpoint")

        let checkpoint = try Checkpoint.read(a.checkpoint)
        let m = checkpoint.metadata
        #expect(m.image == ImageInput(camera: "follower_pixels", height: 30, width: 40, channels: 3))
        #expect(m.observationNames.isEmpty && m.observationSize == 40 * 30 * 3)
        #expect(m.actionChoices == 6 && m.actionNames == ["steering"] && !m.configuration.normalizeObservations)
        #expect(checkpoint.policy.convolutions.map(\.channels) == [8, 8])

        let server = try ServerProcess(scene: Self.scene, envs: 2, seed: 1, extraArguments: Self.twoRenderThreads)
        defer { server.stop() }
        let env = try VectorEnvGroup(addresses: [server.address], total: 2, options: .init(clientName: "pixel-test"))
        defer { env.close() }
        try env.setReward(m.reward)
        let trained = try Evaluator.run(checkpoint, env: env, episodes: 2, seed: 1_000_004)
        #expect(trained.episodes.count == 2 && trained.episodes.allSatisfy { $0.length >= 1 && $0.length <= 300 })
        let random = try (0..<2).map { _ in try Evaluator.run(policy: .random, env: env, episodes: 4, seed: 1_000_004) }
        #expect(random[0].episodes.count == 4)
        #expect(random[0].episodes.map(\.ret) == random[1].episodes.map(\.ret), "random actions are seeded")
    }

    @Test func jobFilesTakeThePixelKeys() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("job-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"kind": "train", "scene": "Scenes/object_tracker_pixels", "pixels": true, "camera": "follower_pixels", "output": "o", "ppo": {"convolutions": [{"channels": 8, "kernel": 5, "stride": 2}]}}"#.utf8).write(to: url)
        let job = try Job.read(url)
        #expect(job.pixels == true && job.camera == "follower_pixels" && job.ppo?.convolutions == [Convolution(channels: 8, kernel: 5, stride: 2)])
        try Data(#"{"kind": "eval", "scene": "Scenes/object_tracker_pixels", "random": true, "episodes": 100, "output": "o"}"#.utf8).write(to: url)
        #expect(try Job.read(url).random == true)
        try Data(#"{"kind": "eval", "scene": "Scenes/object_tracker_pixels", "pixels": true, "random": true, "output": "o"}"#.utf8).write(to: url)
        #expect(throws: (any Error).self) { _ = try Job.read(url) }
    }

    @Test func imagesDoNotDependOnWhoDrewThemOrWhatCameBefore() throws {
        var runs: [[[UInt8]]] = []
        for _ in 0..<2 {
            let server = try ServerProcess(scene: Self.scene, envs: 2, seed: 3, extraArguments: Self.twoRenderThreads)
            defer { server.stop() }
            let env = try VectorEnvGroup(addresses: [server.address], total: 2, options: .init(clientName: "pixel-test"))
            defer { env.close() }
            var images = try env.reset(seed: 3, render: true, cameras: ["follower_pixels"]).images.map { [UInt8]($0.data) }
            for _ in 0..<5 { images += try env.step(actions: [0, 3], render: true, cameras: ["follower_pixels"]).images.map { [UInt8]($0.data) } }
            runs.append(images)
            // The same state again, one env at a time, after the other env, after another camera:
            // whichever thread takes it and whatever it drew last, the same image.
            let last = Array(images.suffix(2))
            for order in [[0], [1], [1, 0], [0, 1], [0], [0]] {
                _ = try env.render(positions: [1 - order[0]], cameras: ["follower_camera"])
                let again = try env.render(positions: order, cameras: ["follower_pixels"]).map { [UInt8]($0.data) }
                for (k, p) in order.enumerated() { #expect(again[k] == last[p], "env \(p) after order \(order)") }
            }
        }
        #expect(runs[0].count == 12 && runs[0].allSatisfy { $0.count == 40 * 30 * 3 })
        for (k, (a, b)) in zip(runs[0], runs[1]).enumerated() { #expect(a == b, "image \(k): \(zip(a, b).filter { $0 != $1 }.count) bytes differ") }
        #expect(runs[0][0] != runs[0][10], "the follower moved")
    }
}
