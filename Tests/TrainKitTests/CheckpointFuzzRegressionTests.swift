import Foundation
import Testing
@testable import TrainKit

/// Inputs that fuzzing found (scripts/fuzz.sh, target fuzz-checkpoint; docs/fuzzing.md), kept so that
/// CI runs them without the fuzzer: checkpoints whose metadata asks for a network the file does not hold.
@Suite struct CheckpointFuzzRegressionTests {
    /// The metadata of a small real checkpoint (3 observations, 2 actions, hidden [4]), as sim-train writes it.
    static func realMetadata() throws -> [String: String] {
        var random = TrainRandom(seed: 1)
        let policy = ActorCritic(observationSize: 3, actionSize: 2, hidden: [4], random: &random)
        var configuration = PPOConfiguration()
        configuration.hidden = [4]
        let checkpoint = Checkpoint(
            metadata: .init(task: "seed", scene: "seed", observationNames: ["a", "b", "c"], actionNames: ["u", "v"], actionLow: [-1, -1],
                            actionHigh: [1, 1], hidden: [4], reward: "alive", envSteps: 10, seed: 1, configuration: configuration, versions: [:]),
            policy: policy, observationNormalization: nil)
        return try SafeTensors.decode(checkpoint.encoded()).metadata
    }

    /// Writes a checkpoint of no tensors with `metadata` and reads it back.
    static func read(_ metadata: [String: String]) throws -> Checkpoint {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-regression-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.encode([], metadata: metadata).write(to: url)
        return try Checkpoint.read(url)
    }

    /// A 1 KB header claimed a 4096x4096x1 image through a 1x1 convolution to 1024 channels, then 4096
    /// wide: 7e13 parameters. The reader asked for them (AddressSanitizer: allocation-size-too-big; a
    /// trap without it) before looking at the tensors.
    @Test func aHugeImageNetworkIsRefusedBeforeAllocating() throws {
        var metadata = try Self.realMetadata()
        metadata["image"] = #"{"camera":"c","height":4096,"width":4096,"channels":1,"layout":"HWC"}"#
        metadata["convolutions"] = #"[{"channels":1024,"kernel":1,"stride":1}]"#
        metadata["hidden"] = "[4096]"
        let error = try #require(throws: TrainError.self) { _ = try Self.read(metadata) }
        #expect(error.description.contains("more weights than the file's 0 values"))
    }

    /// Eight 4096-wide layers (within the per-field limits): about 2.3e8 parameters allocated and
    /// initialized before the missing tensors were noticed, over 5 s per file (a fuzzer timeout).
    @Test func wideHiddenLayersWithoutTheirTensorsAreRefused() throws {
        var metadata = try Self.realMetadata()
        metadata["hidden"] = "[" + Array(repeating: "4096", count: 8).joined(separator: ",") + "]"
        let error = try #require(throws: TrainError.self) { _ = try Self.read(metadata) }
        #expect(error.description.contains("more weights than the file's 0 values"))
    }

    /// The bound counts exactly the actor's weights: a real checkpoint passes it and reads back.
    @Test func theWeightBoundMatchesARealNetwork() throws {
        let metadata = try Self.realMetadata()
        let meta = Checkpoint.Metadata(task: "seed", scene: "seed", observationNames: ["a", "b", "c"], actionNames: ["u", "v"], actionLow: [-1, -1],
                                       actionHigh: [1, 1], hidden: [4], reward: "", envSteps: 0, seed: 1, configuration: PPOConfiguration(),
                                       versions: [:])
        #expect(Checkpoint.actorWeights(meta, convolutions: []) == 3 * 4 + 4 * 2)
        let image = ImageInput(camera: "c", height: 12, width: 16, channels: 3)
        var pixels = meta
        pixels.image = image
        // 4x4 kernel, stride 2: 3 -> 4 channels, 12x16 -> 5x7; then 140 -> 4 -> 2.
        #expect(Checkpoint.actorWeights(pixels, convolutions: [Convolution(channels: 4, kernel: 4, stride: 2)]) == 4 * 4 * 3 * 4 + 140 * 4 + 4 * 2)
        #expect(throws: TrainError.self) { _ = try Self.read(metadata) }   // no tensors: 20 weights > 0 values
    }
}
