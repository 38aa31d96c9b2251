import ClientKit
import Foundation

/// What an evaluation drives the envs with: a checkpoint's policy (its most likely actions), or
/// uniformly random actions, the baseline a trained policy is measured against on the same seeded
/// episodes.
public enum EvaluationPolicy {
    case checkpoint(Checkpoint)
    /// A checkpoint's policy, its actions drawn from its distribution as in training (seeded by the
    /// evaluation's seed) instead of the most likely ones.
    case sampled(Checkpoint)
    /// Each action drawn uniformly: a discrete action's index from its choices, a continuous
    /// action's components from their bounds. Seeded by the evaluation's seed.
    case random

    /// The policy bound to `env`: its observations (the env's, or a pixel policy's images) and its
    /// actions for them. Throws when the policy does not fit the env's task.
    func bind(to env: some VectorEnvironment, seed: UInt64) throws -> BoundPolicy {
        switch self {
        case .checkpoint(let checkpoint), .sampled(let checkpoint):
            var random = TrainRandom(seed: seed)
            let act: ([Double], Int) -> [Double]
            if case .sampled = self {
                act = { checkpoint.sampledActions($0, rows: $1, random: &random) }
            } else {
                act = { checkpoint.actions($0, rows: $1) }
            }
            let m = checkpoint.metadata
            guard m.actionNames.count == env.actionSize, m.actionChoices == env.actionChoices else {
                throw TrainError("the checkpoint's policy gives \(m.actionNames.count) actions (\(m.actionChoices) choices); the server's task takes \(env.actionSize) (\(env.actionChoices) choices)")
            }
            if let image = m.image {
                return BoundPolicy(pixels: try PixelObservations(env: env, input: image), actions: act)
            }
            guard m.observationNames.count == env.observationSize else {
                throw TrainError("the checkpoint's policy takes \(m.observationNames.count) observations and gives \(m.actionNames.count) actions; the server's task has \(env.observationSize) and \(env.actionSize)")
            }
            return BoundPolicy(pixels: nil, actions: act)
        case .random:
            var random = TrainRandom(seed: seed)
            let (choices, low, high) = (env.actionChoices, env.actionLow, env.actionHigh)
            return BoundPolicy(pixels: nil) { _, rows in
                if choices > 0 { return (0..<rows).map { _ in Double(random.next() % UInt64(choices)) } }
                return (0..<(rows * low.count)).map { k in
                    let j = k % low.count
                    return low[j] + (high[j] - low[j]) * random.uniform()
                }
            }
        }
    }
}

/// A policy bound to an env for one evaluation (not thread-safe: the random one keeps its generator).
final class BoundPolicy {
    /// The images a pixel policy sees (nil: the env's observations).
    let pixels: PixelObservations?
    /// The actions for `rows` observations (env-major).
    let actions: ([Double], Int) -> [Double]

    init(pixels: PixelObservations?, actions: @escaping ([Double], Int) -> [Double]) {
        self.pixels = pixels
        self.actions = actions
    }
}
