import Foundation

/// An actor-critic for continuous actions: a Gaussian policy (an MLP for the mean, a learned
/// state-independent log standard deviation per action) and a separate value MLP, all parameters in
/// one flat buffer (for Adam, gradient clipping and checkpoints). Stable-Baselines3's `MlpPolicy`
/// shape for PPO.
final class ActorCritic {
    let observationSize: Int
    let actionSize: Int
    let hidden: [Int]
    let actor: MLP
    let critic: MLP
    /// Offset of the log standard deviations in `parameters`.
    let logStdOffset: Int
    var parameters: [Float]

    init(observationSize: Int, actionSize: Int, hidden: [Int], initialLogStd: Float = 0, random: inout TrainRandom) {
        self.observationSize = observationSize
        self.actionSize = actionSize
        self.hidden = hidden
        let actorSizes = [observationSize] + hidden + [actionSize], criticSizes = [observationSize] + hidden + [1]
        actor = MLP(sizes: actorSizes, offset: 0)
        logStdOffset = actor.parameterCount
        critic = MLP(sizes: criticSizes, offset: logStdOffset + actionSize)
        parameters = [Float](repeating: 0, count: critic.offset + critic.parameterCount)
        parameters.withUnsafeMutableBufferPointer { p in
            actor.initialize(p.baseAddress!, random: &random, hiddenGain: Float(2).squareRoot(), outputGain: 0.01)
            critic.initialize(p.baseAddress!, random: &random, hiddenGain: Float(2).squareRoot(), outputGain: 1)
            for j in 0..<actionSize { p[logStdOffset + j] = initialLogStd }
        }
    }

    var parameterCount: Int { parameters.count }

    /// Means of the action distribution and values for `batch` normalized observations.
    func evaluate(_ observations: UnsafePointer<Float>, batch: Int, means: inout [Float], values: inout [Float]) {
        parameters.withUnsafeBufferPointer { p in
            let m = actor.forward(p.baseAddress!, observations, batch: batch)
            means.removeAll(keepingCapacity: true)
            means.append(contentsOf: m)
            let v = critic.forward(p.baseAddress!, observations, batch: batch)
            values.removeAll(keepingCapacity: true)
            values.append(contentsOf: v)
        }
    }

    /// The value estimates alone.
    func values(_ observations: UnsafePointer<Float>, batch: Int) -> [Float] {
        parameters.withUnsafeBufferPointer { Array(critic.forward($0.baseAddress!, observations, batch: batch)) }
    }

    var logStd: [Float] { Array(parameters[logStdOffset..<(logStdOffset + actionSize)]) }

    /// Log-density of `action` under N(mean, exp(logStd)²), summed over action components.
    static func logProbability(_ action: UnsafePointer<Float>, mean: UnsafePointer<Float>, logStd: [Float]) -> Float {
        var s: Float = 0
        for j in 0..<logStd.count {
            let z = (action[j] - mean[j]) / expf(logStd[j])
            s += -0.5 * z * z - logStd[j] - 0.5 * Float(Foundation.log(2 * Double.pi))
        }
        return s
    }
}
