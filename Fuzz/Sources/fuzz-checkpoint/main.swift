import Foundation
import FuzzSupport
@testable import TrainKit

/// Policy checkpoints (safetensors with robosim.ppo.v1 metadata; `sim-train eval`, `sim-deploy`'s
/// agents): the first byte picks the raw safetensors decoder (0) or the whole checkpoint reader
/// (otherwise), which also rebuilds the network the metadata describes and runs it once.
enum Fixture {
    static let scratch = ScratchFile(name: "policy.safetensors")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let (selector, rest) = FuzzInput(data, size).selectorAndRest else { return 0 }
    if selector & 1 == 0 {
        guard let (tensors, _) = try? SafeTensors.decode(Data(rest)) else { return 0 }
        for (name, t) in tensors {
            precondition(t.name == name && t.values.count == t.shape.reduce(1, *), "tensor '\(name)' does not match its shape")
            precondition(t.values.count * 4 <= rest.count, "more values than the file holds")
        }
        return 0
    }
    let url = Fixture.scratch.write(Array(rest))
    guard let checkpoint = try? Checkpoint.read(url) else { return 0 }
    let observations = [Double](repeating: 0.5, count: checkpoint.metadata.observationSize)
    let actions = checkpoint.actions(observations, rows: 1)
    let expected = checkpoint.metadata.actionChoices > 0 ? 1 : checkpoint.metadata.actionNames.count
    precondition(actions.count == expected, "\(actions.count) actions, expected \(expected)")
    return 0
}

/// `FUZZ_WRITE_SEEDS=DIR fuzz-checkpoint` writes the seed corpus: small real checkpoints as sim-train
/// writes them (Gaussian and categorical heads), each behind the selector byte 1.
func writeSeeds(to folder: String) throws {
    for (name, choices) in [("gaussian", 0), ("categorical", 3)] {
        var random = TrainRandom(seed: 1)
        let policy = ActorCritic(observationSize: 3, actionSize: choices > 0 ? 1 : 2, choices: choices, hidden: [4], random: &random)
        var configuration = PPOConfiguration()
        configuration.hidden = [4]
        let metadata = Checkpoint.Metadata(
            task: "seed", scene: "seed", observationNames: ["a", "b", "c"], actionNames: choices > 0 ? ["k"] : ["u", "v"],
            actionLow: choices > 0 ? [0] : [-1, -1], actionHigh: choices > 0 ? [2] : [1, 1], actionChoices: choices, hidden: [4],
            reward: "alive", envSteps: 10, seed: 1, configuration: configuration, versions: ["robosim": "seed"])
        let bytes = try Checkpoint(metadata: metadata, policy: policy, observationNormalization: RunningMeanVariance(size: 3)).encoded()
        try Data([1] + bytes).write(to: URL(fileURLWithPath: folder).appendingPathComponent("\(name).safetensors"))
    }
}

if let folder = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] {
    try writeSeeds(to: folder)
    exit(0)
}
runFuzzer(fuzz)
