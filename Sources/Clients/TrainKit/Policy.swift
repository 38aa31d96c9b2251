import Foundation

/// An actor-critic: for continuous actions a Gaussian policy (a network for the mean, a learned
/// state-independent log standard deviation per action), for discrete ones a categorical policy (a
/// network for the logits of the `choices`); and a separate value network. The networks are MLPs
/// over observations (Stable-Baselines3's `MlpPolicy` shape for PPO), or, for an `image` input, CNNs
/// with encoders of their own (SB3's `CnnPolicy` with `share_features_extractor=False`). All
/// parameters in one flat buffer (for Adam, gradient clipping and checkpoints).
final class ActorCritic {
    let observationSize: Int
    /// Values per action: the Gaussian's components, or 1 (the index of a discrete action).
    let actionSize: Int
    /// Choices of a discrete action (0: Gaussian).
    let choices: Int
    let hidden: [Int]
    /// The pixel input of CNN networks (nil: MLPs), and their convolutions.
    let image: ImageInput?
    let convolutions: [Convolution]
    let actor: any Network
    let critic: any Network
    /// Offset of the log standard deviations in `parameters`.
    let logStdOffset: Int
    var parameters: [Float]

    /// With `image`, `observationSize` must be its size, and `hidden` are the dense widths after the `convolutions`.
    init(observationSize: Int, actionSize: Int, choices: Int = 0, hidden: [Int], image: ImageInput? = nil, convolutions: [Convolution] = [],
         initialLogStd: Float = 0, random: inout TrainRandom) {
        precondition(image == nil || image!.size == observationSize, "an image input is the whole observation")
        self.observationSize = observationSize
        self.actionSize = choices > 0 ? 1 : actionSize
        self.choices = choices
        self.hidden = hidden
        self.image = image
        self.convolutions = image == nil ? [] : convolutions
        let outputs = choices > 0 ? choices : actionSize
        if let image {
            actor = CNN(image: image, convolutions: convolutions, hidden: hidden, outputs: outputs, offset: 0)
        } else {
            actor = MLP(sizes: [observationSize] + hidden + [outputs], offset: 0)
        }
        logStdOffset = actor.parameterCount
        let criticOffset = logStdOffset + logStdCount(actionSize: actionSize, choices: choices)
        if let image {
            critic = CNN(image: image, convolutions: convolutions, hidden: hidden, outputs: 1, offset: criticOffset)
        } else {
            critic = MLP(sizes: [observationSize] + hidden + [1], offset: criticOffset)
        }
        parameters = [Float](repeating: 0, count: critic.offset + critic.parameterCount)
        parameters.withUnsafeMutableBufferPointer { p in
            actor.initialize(p.baseAddress!, random: &random, hiddenGain: Float(2).squareRoot(), outputGain: 0.01)
            critic.initialize(p.baseAddress!, random: &random, hiddenGain: Float(2).squareRoot(), outputGain: 1)
            for j in 0..<logStdCount(actionSize: actionSize, choices: choices) { p[logStdOffset + j] = initialLogStd }
        }
    }

    /// Outputs of the actor: the Gaussian's means, or the categorical's logits.
    var actorOutputs: Int { choices > 0 ? choices : actionSize }

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

    /// The Gaussian's log standard deviations (empty for a categorical policy).
    var logStd: [Float] { choices > 0 ? [] : Array(parameters[logStdOffset..<(logStdOffset + actionSize)]) }

    /// Log-probabilities of the `choices` for one row of logits (log-softmax, stable).
    static func logSoftmax(_ logits: UnsafePointer<Float>, _ count: Int, into out: inout [Float]) {
        var top = logits[0]
        for i in 1..<count { top = max(top, logits[i]) }
        var sum: Float = 0
        for i in 0..<count { sum += expf(logits[i] - top) }
        let log = top + logf(sum)
        out.removeAll(keepingCapacity: true)
        for i in 0..<count { out.append(logits[i] - log) }
    }

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

/// Log standard deviations a policy holds: one per Gaussian action component, none for a categorical.
private func logStdCount(actionSize: Int, choices: Int) -> Int { choices > 0 ? 0 : actionSize }
