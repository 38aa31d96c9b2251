import Foundation

/// PPO's hyperparameters (Schulman et al. 2017; defaults as Stable-Baselines3 and CleanRL use them
/// for small continuous-control tasks, with a short horizon for many envs).
public struct PPOConfiguration: Codable, Sendable, Equatable {
    /// Control steps per env per rollout.
    public var steps = 128
    /// Passes over each rollout, and minibatches per pass.
    public var epochs = 10
    public var minibatches = 4
    public var learningRate: Float = 3e-4
    /// Anneal the learning rate linearly to 0 over the run.
    public var annealLearningRate = false
    public var gamma: Float = 0.99
    public var gaeLambda: Float = 0.95
    public var clip: Float = 0.2
    /// Clip the value update around the old value by this much (nil: no value clipping).
    public var valueClip: Float? = 0.2
    public var entropyCoefficient: Float = 0
    public var valueCoefficient: Float = 0.5
    public var maxGradientNorm: Float = 0.5
    public var hidden = [64, 64]
    public var initialLogStd: Float = 0
    /// Normalize observations (running mean and variance) and rewards (by the running standard
    /// deviation of the discounted return), both clipped to ±10: VecNormalize's defaults.
    public var normalizeObservations = true
    public var normalizeRewards = true
    public var normalizeAdvantages = true
    /// A pixel policy's convolutions (channels, kernel, stride), ahead of the `hidden` dense layers
    /// (ignored for observation vectors). Default two layers, 16 5x5 filters at stride 2 and 32
    /// 3x3 at stride 2: a NatureCNN shrunk to 40x30 images and 2 cores.
    public var convolutions = [Convolution(channels: 16, kernel: 5, stride: 2), Convolution(channels: 32, kernel: 3, stride: 2)]

    public init() {}

    /// The keys of a job file's `ppo` object (snake_case), each optional: missing ones keep the defaults.
    static var keys: Set<String> { Set(CodingKeys.allCases.map { snakeCase($0.rawValue) }) }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case steps, epochs, minibatches, learningRate, annealLearningRate, gamma, gaeLambda, clip, valueClip, entropyCoefficient
        case valueCoefficient, maxGradientNorm, hidden, initialLogStd, normalizeObservations, normalizeRewards, normalizeAdvantages
        case convolutions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PPOConfiguration()
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        minibatches = try c.decodeIfPresent(Int.self, forKey: .minibatches) ?? d.minibatches
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
        annealLearningRate = try c.decodeIfPresent(Bool.self, forKey: .annealLearningRate) ?? d.annealLearningRate
        gamma = try c.decodeIfPresent(Float.self, forKey: .gamma) ?? d.gamma
        gaeLambda = try c.decodeIfPresent(Float.self, forKey: .gaeLambda) ?? d.gaeLambda
        clip = try c.decodeIfPresent(Float.self, forKey: .clip) ?? d.clip
        valueClip = c.contains(.valueClip) ? try c.decodeIfPresent(Float.self, forKey: .valueClip) : d.valueClip
        entropyCoefficient = try c.decodeIfPresent(Float.self, forKey: .entropyCoefficient) ?? d.entropyCoefficient
        valueCoefficient = try c.decodeIfPresent(Float.self, forKey: .valueCoefficient) ?? d.valueCoefficient
        maxGradientNorm = try c.decodeIfPresent(Float.self, forKey: .maxGradientNorm) ?? d.maxGradientNorm
        hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? d.hidden
        initialLogStd = try c.decodeIfPresent(Float.self, forKey: .initialLogStd) ?? d.initialLogStd
        normalizeObservations = try c.decodeIfPresent(Bool.self, forKey: .normalizeObservations) ?? d.normalizeObservations
        normalizeRewards = try c.decodeIfPresent(Bool.self, forKey: .normalizeRewards) ?? d.normalizeRewards
        normalizeAdvantages = try c.decodeIfPresent(Bool.self, forKey: .normalizeAdvantages) ?? d.normalizeAdvantages
        convolutions = try c.decodeIfPresent([Convolution].self, forKey: .convolutions) ?? d.convolutions
        if let problem = problem {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ppo: \(problem)"))
        }
    }

    /// Written with every key, `value_clip` null included (an omitted key would read back as the default).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(steps, forKey: .steps)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(minibatches, forKey: .minibatches)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(annealLearningRate, forKey: .annealLearningRate)
        try c.encode(gamma, forKey: .gamma)
        try c.encode(gaeLambda, forKey: .gaeLambda)
        try c.encode(clip, forKey: .clip)
        if let valueClip { try c.encode(valueClip, forKey: .valueClip) } else { try c.encodeNil(forKey: .valueClip) }
        try c.encode(entropyCoefficient, forKey: .entropyCoefficient)
        try c.encode(valueCoefficient, forKey: .valueCoefficient)
        try c.encode(maxGradientNorm, forKey: .maxGradientNorm)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(initialLogStd, forKey: .initialLogStd)
        try c.encode(normalizeObservations, forKey: .normalizeObservations)
        try c.encode(normalizeRewards, forKey: .normalizeRewards)
        try c.encode(normalizeAdvantages, forKey: .normalizeAdvantages)
        try c.encode(convolutions, forKey: .convolutions)
    }

    /// Why these settings cannot train, or nil.
    public var problem: String? {
        guard steps >= 1, steps <= 1 << 20, epochs >= 1, epochs <= 1000, minibatches >= 1 else { return "steps in 1...1048576, epochs in 1...1000, minibatches >= 1" }
        guard learningRate > 0, learningRate.isFinite, learningRate <= 1 else { return "learning_rate in (0, 1]" }
        guard gamma > 0, gamma <= 1, gaeLambda >= 0, gaeLambda <= 1 else { return "gamma in (0, 1], gae_lambda in [0, 1]" }
        guard clip > 0, clip.isFinite, valueClip.map({ $0 > 0 && $0.isFinite }) ?? true else { return "clip and value_clip (or null) > 0" }
        guard valueCoefficient >= 0, valueCoefficient.isFinite, entropyCoefficient.isFinite, abs(entropyCoefficient) <= 10 else {
            return "value_coefficient >= 0, entropy_coefficient in [-10, 10]"
        }
        guard maxGradientNorm > 0, maxGradientNorm.isFinite else { return "max_gradient_norm > 0" }
        guard !hidden.isEmpty, hidden.count <= 8, hidden.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { return "hidden: 1 to 8 widths in 1...4096" }
        guard initialLogStd.isFinite, abs(initialLogStd) <= 10 else { return "initial_log_std in [-10, 10]" }
        guard !convolutions.isEmpty, convolutions.count <= 8,
              convolutions.allSatisfy({ (1...1024).contains($0.channels) && (1...16).contains($0.kernel) && (1...16).contains($0.stride) }) else {
            return "convolutions: 1 to 8 layers, channels in 1...1024, kernel and stride in 1...16"
        }
        return nil
    }
}

/// What one PPO update reports.
public struct UpdateStatistics: Sendable {
    public var policyLoss = 0.0, valueLoss = 0.0, entropy = 0.0, approxKL = 0.0, clipFraction = 0.0
    public var explainedVariance = 0.0, learningRate = 0.0
}

/// One rollout of `steps` × `envs` transitions, then the update (GAE, clipped surrogate, value
/// clipping, entropy bonus, global gradient-norm clipping, Adam). Single-threaded and seeded: the
/// same inputs give the same parameters, bit for bit.
final class PPOLearner {
    let configuration: PPOConfiguration
    let policy: ActorCritic
    private(set) var envs: Int
    private var adam: Adam
    private var random: TrainRandom

    // Rollout storage, [step][env] flattened.
    var observations: [Float]
    var actions: [Float]
    var logProbabilities: [Float]
    var values: [Float]
    var rewards: [Float]
    var dones: [Float]
    private var advantages: [Float]
    private var returns: [Float]

    /// `choices` > 0: a discrete action of that many choices (a categorical policy), else Gaussian.
    /// `image`: the observations are that image (CNN networks with the configuration's convolutions).
    init(configuration: PPOConfiguration, observationSize: Int, actionSize: Int, choices: Int = 0, image: ImageInput? = nil, envs: Int, seed: UInt64) {
        self.configuration = configuration
        self.envs = envs
        random = TrainRandom(seed: seed)
        policy = ActorCritic(observationSize: observationSize, actionSize: actionSize, choices: choices, hidden: configuration.hidden,
                             image: image, convolutions: configuration.convolutions, initialLogStd: configuration.initialLogStd, random: &random)
        adam = Adam(count: policy.parameterCount)
        (observations, actions, logProbabilities, values, rewards, dones, advantages, returns) = ([], [], [], [], [], [], [], [])
        resize(envs: envs)
    }

    /// Makes the rollout storage hold `envs` envs (servers were lost or came back); what it held is
    /// dropped, the policy and the optimizer stay.
    func resize(envs: Int) {
        self.envs = envs
        let n = configuration.steps * envs
        observations = [Float](repeating: 0, count: n * policy.observationSize)
        actions = [Float](repeating: 0, count: n * policy.actionSize)
        logProbabilities = [Float](repeating: 0, count: n)
        values = [Float](repeating: 0, count: n)
        rewards = [Float](repeating: 0, count: n)
        dones = [Float](repeating: 0, count: n)
        advantages = [Float](repeating: 0, count: n)
        returns = [Float](repeating: 0, count: n)
    }

    /// Samples actions for `envs` normalized observations; returns (actions, log-probabilities,
    /// values). `deterministic`: the means (Gaussian) or the most likely choices (categorical).
    /// A discrete action is its index, as a Float.
    func act(_ observations: [Float], deterministic: Bool = false) -> (actions: [Float], logProbabilities: [Float], values: [Float]) {
        var outputs: [Float] = [], values: [Float] = []
        let rows = observations.count / policy.observationSize
        observations.withUnsafeBufferPointer { policy.evaluate($0.baseAddress!, batch: rows, means: &outputs, values: &values) }
        var logp = [Float](repeating: 0, count: rows)
        if policy.choices > 0 {
            let n = policy.choices
            var out = [Float](repeating: 0, count: rows)
            var logProbabilities: [Float] = []
            outputs.withUnsafeBufferPointer { z in
                for r in 0..<rows {
                    ActorCritic.logSoftmax(z.baseAddress! + r * n, n, into: &logProbabilities)
                    var choice = 0
                    if deterministic {
                        for i in 1..<n where logProbabilities[i] > logProbabilities[choice] { choice = i }
                    } else {
                        // Inverse CDF of one uniform draw; the last choice takes any rounding remainder.
                        var u = Float(random.uniform())
                        choice = n - 1
                        for i in 0..<n {
                            u -= expf(logProbabilities[i])
                            if u < 0 { choice = i; break }
                        }
                    }
                    out[r] = Float(choice)
                    logp[r] = logProbabilities[choice]
                }
            }
            return (out, logp, values)
        }
        let a = policy.actionSize
        let logStd = policy.logStd
        var out = outputs
        if !deterministic {
            for r in 0..<rows {
                for j in 0..<a { out[r * a + j] = outputs[r * a + j] + expf(logStd[j]) * Float(random.normal()) }
            }
        }
        out.withUnsafeBufferPointer { o in
            outputs.withUnsafeBufferPointer { m in
                for r in 0..<rows { logp[r] = ActorCritic.logProbability(o.baseAddress! + r * a, mean: m.baseAddress! + r * a, logStd: logStd) }
            }
        }
        return (out, logp, values)
    }

    /// Advantages (GAE-λ) and returns of the stored rollout, bootstrapped from `lastValues`.
    func computeAdvantages(lastValues: [Float]) {
        let (g, l) = (configuration.gamma, configuration.gaeLambda)
        var next = [Float](repeating: 0, count: envs)
        for t in stride(from: configuration.steps - 1, through: 0, by: -1) {
            for e in 0..<envs {
                let i = t * envs + e
                let nextValue = t == configuration.steps - 1 ? lastValues[e] : values[i + envs]
                let notDone = 1 - dones[i]
                let delta = rewards[i] + g * nextValue * notDone - values[i]
                next[e] = delta + g * l * notDone * next[e]
                advantages[i] = next[e]
                returns[i] = advantages[i] + values[i]
            }
        }
    }

    /// The update over the stored rollout; `progress` in [0, 1] anneals the learning rate.
    func update(progress: Double) -> UpdateStatistics {
        let c = configuration
        let (o, a) = (policy.observationSize, policy.actionSize)
        let n = c.steps * envs
        // At most one minibatch per transition (a rollout shrinks when a server is lost); the last
        // minibatch takes the remainder, so the buffers hold up to batch + remainder rows.
        let minibatches = min(c.minibatches, n)
        let batch = max(1, n / minibatches)
        let widest = batch + n % minibatches
        let lr = c.annealLearningRate ? c.learningRate * Float(1 - progress) : c.learningRate
        var stats = UpdateStatistics()
        stats.learningRate = Double(lr)
        var count = 0.0
        let outputs = policy.actorOutputs
        var mbObs = [Float](repeating: 0, count: widest * o), dMean = [Float](repeating: 0, count: widest * outputs)
        var entropySum = 0.0
        var logProbabilities: [Float] = []
        var dValue = [Float](repeating: 0, count: widest)
        var grads = [Float](repeating: 0, count: policy.parameterCount)
        for _ in 0..<c.epochs {
            let order = random.permutation(n)
            for m in 0..<minibatches {
                // The last minibatch takes the remainder of n / minibatches.
                let rows = Array(order[(m * batch)..<(m == minibatches - 1 ? n : (m + 1) * batch)])
                let b = rows.count
                for (k, i) in rows.enumerated() { for j in 0..<o { mbObs[k * o + j] = observations[i * o + j] } }
                var advMean: Float = 0, advVar: Float = 0
                let normalize = c.normalizeAdvantages && b > 1  // one sample has no spread (SB3 skips it too)
                if normalize {
                    for i in rows { advMean += advantages[i] }
                    advMean /= Float(b)
                    for i in rows { advVar += (advantages[i] - advMean) * (advantages[i] - advMean) }
                    advVar /= Float(max(1, b - 1))  // torch's std is unbiased
                }
                let advScale: Float = normalize ? 1 / (advVar.squareRoot() + 1e-8) : 1
                for k in 0..<grads.count { grads[k] = 0 }
                let logStd = policy.logStd
                policy.parameters.withUnsafeBufferPointer { p in
                    mbObs.withUnsafeBufferPointer { x in
                        let means = policy.actor.forward(p.baseAddress!, x.baseAddress!, batch: b).baseAddress!
                        var logStdGrad = [Float](repeating: 0, count: logStd.count)
                        for (k, i) in rows.enumerated() {
                            var logp: Float = 0
                            if policy.choices > 0 {
                                ActorCritic.logSoftmax(means + k * outputs, outputs, into: &logProbabilities)
                                logp = logProbabilities[Int(actions[i])]
                            } else {
                                for j in 0..<a {
                                    let z = (actions[i * a + j] - means[k * a + j]) / expf(logStd[j])
                                    logp += -0.5 * z * z - logStd[j] - 0.5 * Float(Foundation.log(2 * Double.pi))
                                }
                            }
                            let logRatio = logp - self.logProbabilities[i]
                            let ratio = expf(logRatio)
                            let adv = normalize ? (advantages[i] - advMean) * advScale : advantages[i]
                            let unclipped = ratio * adv, clipped = min(max(ratio, 1 - c.clip), 1 + c.clip) * adv
                            stats.policyLoss += Double(-min(unclipped, clipped))
                            stats.approxKL += Double((ratio - 1) - logRatio)
                            if abs(ratio - 1) > c.clip { stats.clipFraction += 1 }
                            // d(-min)/d logp: through the unclipped branch when it is the smaller.
                            let dLogp: Float = unclipped <= clipped ? -adv * ratio / Float(b) : 0
                            if policy.choices > 0 {
                                // d logp_a / d z_j = [j == a] - p_j; the loss subtracts c·H with
                                // dH/dz_j = -p_j (log p_j + H).
                                var entropy: Float = 0
                                for j in 0..<outputs { entropy -= expf(logProbabilities[j]) * logProbabilities[j] }
                                entropySum += Double(entropy)
                                let chosen = Int(actions[i])
                                for j in 0..<outputs {
                                    let pj = expf(logProbabilities[j])
                                    dMean[k * outputs + j] = dLogp * ((j == chosen ? 1 : 0) - pj)
                                        + c.entropyCoefficient / Float(b) * pj * (logProbabilities[j] + entropy)
                                }
                            } else {
                                for j in 0..<a {
                                    let sigma = expf(logStd[j])
                                    let diff = actions[i * a + j] - means[k * a + j]
                                    dMean[k * a + j] = dLogp * diff / (sigma * sigma)
                                    logStdGrad[j] += dLogp * (diff * diff / (sigma * sigma) - 1)
                                }
                            }
                            count += 1
                        }
                        grads.withUnsafeMutableBufferPointer { g in
                            dMean.withUnsafeBufferPointer { policy.actor.backward(p.baseAddress!, g.baseAddress!, $0.baseAddress!, batch: b) }
                            // Entropy of a diagonal Gaussian: Σ (logStd + ½ log 2πe); the loss subtracts it.
                            for j in 0..<logStd.count { g[policy.logStdOffset + j] += logStdGrad[j] - c.entropyCoefficient }
                        }
                        let v = policy.critic.forward(p.baseAddress!, x.baseAddress!, batch: b)
                        for (k, i) in rows.enumerated() {
                            let error = v[k] - returns[i]
                            var loss = error * error, grad = error
                            if let vc = c.valueClip {
                                let delta = v[k] - values[i]
                                let clippedValue = values[i] + min(max(delta, -vc), vc)
                                let clippedError = clippedValue - returns[i]
                                if clippedError * clippedError > loss {
                                    loss = clippedError * clippedError
                                    grad = abs(delta) < vc ? clippedError : 0
                                }
                            }
                            stats.valueLoss += Double(0.5 * loss)
                            dValue[k] = c.valueCoefficient * grad / Float(b)
                        }
                        grads.withUnsafeMutableBufferPointer { g in
                            dValue.withUnsafeBufferPointer { policy.critic.backward(p.baseAddress!, g.baseAddress!, $0.baseAddress!, batch: b) }
                        }
                    }
                }
                // Global gradient-norm clipping, then Adam.
                var norm: Float = 0
                for gk in grads { norm += gk * gk }
                norm = norm.squareRoot()
                if norm > c.maxGradientNorm {
                    let s = c.maxGradientNorm / (norm + 1e-6)
                    for k in 0..<grads.count { grads[k] *= s }
                }
                adam.step(&policy.parameters, grads, learningRate: lr)
            }
        }
        stats.entropy = policy.choices > 0 ? entropySum / max(count, 1)
            : Double(policy.logStd.reduce(0) { $0 + $1 + 0.5 * Float(Foundation.log(2 * Double.pi * M_E)) })
        stats.policyLoss /= count
        stats.valueLoss /= count
        stats.approxKL /= count
        stats.clipFraction /= count
        // How much of the returns' variance the value estimates explain: 1 - Var(R - V) / Var(R).
        var meanR = 0.0, meanD = 0.0
        for i in 0..<n {
            meanR += Double(returns[i])
            meanD += Double(returns[i] - values[i])
        }
        meanR /= Double(n)
        meanD /= Double(n)
        var varR = 0.0, varD = 0.0
        for i in 0..<n {
            varR += (Double(returns[i]) - meanR) * (Double(returns[i]) - meanR)
            let d = Double(returns[i] - values[i]) - meanD
            varD += d * d
        }
        stats.explainedVariance = varR > 0 ? 1 - varD / varR : 0
        return stats
    }
}

/// Adam (Kingma and Ba) with torch's defaults, ε 1e-5 as Stable-Baselines3 sets it for PPO.
struct Adam {
    var m: [Float], v: [Float]
    var t = 0
    let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-5

    init(count: Int) {
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    mutating func step(_ params: inout [Float], _ grads: [Float], learningRate: Float) {
        t += 1
        let c1 = 1 - powf(beta1, Float(t)), c2 = 1 - powf(beta2, Float(t))
        for k in 0..<params.count {
            m[k] = beta1 * m[k] + (1 - beta1) * grads[k]
            v[k] = beta2 * v[k] + (1 - beta2) * grads[k] * grads[k]
            params[k] -= learningRate * (m[k] / c1) / ((v[k] / c2).squareRoot() + epsilon)
        }
    }
}

/// Running mean and variance (Chan et al.'s parallel update), as VecNormalize keeps them.
struct RunningMeanVariance: Codable, Sendable, Equatable {
    var mean: [Double]
    var variance: [Double]
    var count: Double

    init(size: Int) {
        mean = [Double](repeating: 0, count: size)
        variance = [Double](repeating: 1, count: size)
        count = 1e-4
    }

    /// Adds `rows` samples of `mean.count` values each.
    mutating func update(_ x: [Double], rows: Int) {
        let size = mean.count
        guard rows > 0 else { return }
        var bMean = [Double](repeating: 0, count: size), bVar = [Double](repeating: 0, count: size)
        for r in 0..<rows { for j in 0..<size { bMean[j] += x[r * size + j] } }
        for j in 0..<size { bMean[j] /= Double(rows) }
        for r in 0..<rows { for j in 0..<size { let d = x[r * size + j] - bMean[j]; bVar[j] += d * d } }
        for j in 0..<size { bVar[j] /= Double(rows) }
        let total = count + Double(rows)
        for j in 0..<size {
            let delta = bMean[j] - mean[j]
            let m2 = variance[j] * count + bVar[j] * Double(rows) + delta * delta * count * Double(rows) / total
            mean[j] += delta * Double(rows) / total
            variance[j] = m2 / total
        }
        count = total
    }

    /// (x - mean) / sqrt(variance + 1e-8), clipped to ±`clip`.
    func normalize(_ x: [Double], rows: Int, clip: Double = 10) -> [Float] {
        let size = mean.count
        var out = [Float](repeating: 0, count: rows * size)
        for r in 0..<rows {
            for j in 0..<size {
                let z = (x[r * size + j] - mean[j]) / (variance[j] + 1e-8).squareRoot()
                out[r * size + j] = Float(min(max(z, -clip), clip))
            }
        }
        return out
    }
}

/// `learningRate` -> `learning_rate`: the JSON key `.convertFromSnakeCase` reads as the property.
func snakeCase(_ name: String) -> String {
    var out = ""
    for c in name {
        if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
    }
    return out
}
