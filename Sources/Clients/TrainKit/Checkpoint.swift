import Foundation

/// A trained policy as a safetensors file with JSON metadata (CONTRACT.md, "Checkpoints"): the
/// actor's and critic's layers (`<net>.layers.<l>.weight` as inputs × outputs, so that a layer is
/// `x @ weight + bias`, tanh between layers), `actor.log_std` (Gaussian policies), and the
/// observation normalization (`obs_norm.mean`, `obs_norm.var`: when `normalize_observations` is
/// "true" the policy sees `clip((x - mean) / sqrt(var + 1e-8), -10, 10)`, else x). A pixel policy
/// (metadata `image`: its camera, height, width, channels; `convolutions`) has CNNs instead:
/// `<net>.conv.<l>.weight` as [kernel, kernel, in, out] (HWIO), `<net>.conv.<l>.bias`, then
/// `<net>.dense.<l>.weight` (inputs × outputs) and `.bias`, ReLU after every layer but the last;
/// its observation is the image (HWC, bytes / 255) and `observation_names` is empty.
public struct Checkpoint {
    /// What the file says about itself (`__metadata__`, all strings; lists and objects as JSON).
    public struct Metadata: Codable, Sendable, Equatable {
        public var format = "robosim.ppo.v1"
        public var task: String
        public var scene: String
        public var observationNames: [String]
        public var actionNames: [String]
        public var actionLow: [Double]
        public var actionHigh: [Double]
        /// Choices of a discrete action (categorical policy); 0: continuous (Gaussian).
        public var actionChoices = 0
        public var hidden: [Int]
        public var activation = "tanh"
        public var reward: String
        public var envSteps: Int
        public var seed: UInt64
        public var configuration: PPOConfiguration
        public var versions: [String: String]
        /// A pixel policy's input (nil: the task's observation vector).
        public var image: ImageInput?

        /// Values of the policy's input per env: the image's, or the observation's.
        public var observationSize: Int { image?.size ?? observationNames.count }
    }

    public var metadata: Metadata
    let policy: ActorCritic
    let observationNormalization: RunningMeanVariance?

    init(metadata: Metadata, policy: ActorCritic, observationNormalization: RunningMeanVariance?) {
        self.metadata = metadata
        self.policy = policy
        self.observationNormalization = observationNormalization
    }

    /// The safetensors bytes.
    public func encoded() throws -> Data {
        var tensors: [SafeTensors.Tensor] = []
        for (name, net) in [("actor", policy.actor), ("critic", policy.critic)] {
            var at = net.offset
            for t in net.tensors {
                let count = t.shape.reduce(1, *)
                tensors.append(.init(name: "\(name).\(t.name)", shape: t.shape, values: Array(policy.parameters[at..<(at + count)])))
                at += count
            }
        }
        if policy.choices == 0 { tensors.append(.init(name: "actor.log_std", shape: [policy.actionSize], values: policy.logStd)) }
        let o = policy.observationSize
        let norm = observationNormalization ?? RunningMeanVariance(size: o)
        tensors.append(.init(name: "obs_norm.mean", shape: [o], values: observationNormalization == nil ? Array(repeating: 0, count: o) : norm.mean.map(Float.init)))
        tensors.append(.init(name: "obs_norm.var", shape: [o], values: observationNormalization == nil ? Array(repeating: 1 - 1e-8, count: o) : norm.variance.map(Float.init)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ v: some Encodable) throws -> String { String(decoding: try encoder.encode(v), as: UTF8.self) }
        let m = metadata
        var pixels: [String: String] = [:]
        if let image = policy.image {
            pixels = ["image": try json(image), "convolutions": try json(policy.convolutions), "activation": "relu"]
        }
        return try SafeTensors.encode(tensors, metadata: pixels.merging([
            "format": m.format, "task": m.task, "scene": m.scene, "observation_names": try json(m.observationNames),
            "action_names": try json(m.actionNames), "action_low": try json(m.actionLow), "action_high": try json(m.actionHigh),
            "hidden": try json(m.hidden), "activation": m.activation, "action_choices": String(m.actionChoices),
            "distribution": m.actionChoices > 0 ? "categorical" : "gaussian", "reward": m.reward, "env_steps": String(m.envSteps),
            "seed": String(m.seed), "configuration": try json(m.configuration), "versions": try json(m.versions),
            "normalize_observations": observationNormalization == nil ? "false" : "true",
        ]) { pixel, _ in pixel })
    }

    /// Writes the file atomically (a temporary file renamed over the old one).
    public func write(to url: URL) throws {
        try encoded().write(to: url, options: .atomic)
    }

    /// Reads a checkpoint written by `write`.
    public static func read(_ url: URL) throws -> Checkpoint {
        let (tensors, meta) = try SafeTensors.decode(try Data(contentsOf: url))
        func field(_ key: String) throws -> String {
            guard let v = meta[key] else { throw TrainError("\(url.path): no '\(key)' in the checkpoint's metadata") }
            return v
        }
        func decoded<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(try field(key).utf8))
        }
        guard try field("format") == "robosim.ppo.v1" else { throw TrainError("\(url.path): format \(meta["format"] ?? "?"), expected robosim.ppo.v1") }
        let metadata = Metadata(task: try field("task"), scene: try field("scene"), observationNames: try decoded("observation_names", [String].self),
                                actionNames: try decoded("action_names", [String].self), actionLow: try decoded("action_low", [Double].self),
                                actionHigh: try decoded("action_high", [Double].self), actionChoices: Int(meta["action_choices"] ?? "0") ?? 0,
                                hidden: try decoded("hidden", [Int].self),
                                reward: try field("reward"), envSteps: Int(try field("env_steps")) ?? 0, seed: UInt64(try field("seed")) ?? 0,
                                configuration: try decoded("configuration", PPOConfiguration.self),
                                versions: try decoded("versions", [String: String].self),
                                image: meta["image"] == nil ? nil : try decoded("image", ImageInput.self))
        let convolutions = metadata.image == nil ? [] : try decoded("convolutions", [Convolution].self)
        if let image = metadata.image, let problem = CNN.problem(image: image, convolutions: convolutions, hidden: metadata.hidden) {
            throw TrainError("\(url.path): \(problem)")
        }
        var random = TrainRandom(seed: 0)
        guard metadata.actionChoices >= 0, metadata.actionChoices <= 1 << 16 else { throw TrainError("\(url.path): action_choices \(metadata.actionChoices)") }
        guard !metadata.hidden.isEmpty, metadata.hidden.count <= 8, metadata.hidden.allSatisfy({ $0 >= 1 && $0 <= 4096 }),
              (1...(1 << 24)).contains(metadata.observationSize), (1...65536).contains(metadata.actionNames.count) else {
            throw TrainError("\(url.path): out of range: hidden \(metadata.hidden) (1 to 8 widths in 1...4096), observation size \(metadata.observationSize) (1...2^24), \(metadata.actionNames.count) action names (1...65536)")
        }
        // The header alone must not size the network: a few bytes of metadata can ask for billions of
        // parameters (found by fuzzing, docs/fuzzing.md). The file holds every weight of a checkpoint
        // that matches its metadata, so more weights than values in the file is a damaged file.
        let values = tensors.values.reduce(0) { $0 + $1.values.count }
        guard let weights = Self.actorWeights(metadata, convolutions: convolutions), weights <= values else {
            throw TrainError("\(url.path): the metadata describes a network of more weights than the file's \(values) values")
        }
        let policy = ActorCritic(observationSize: metadata.observationSize, actionSize: metadata.actionNames.count,
                                 choices: metadata.actionChoices, hidden: metadata.hidden, image: metadata.image, convolutions: convolutions,
                                 random: &random)
        for (name, net) in [("actor", policy.actor), ("critic", policy.critic)] {
            var at = net.offset
            for expected in net.tensors {
                let count = expected.shape.reduce(1, *)
                guard let t = tensors["\(name).\(expected.name)"], t.shape == expected.shape, t.values.count == count else {
                    throw TrainError("\(url.path): \(name).\(expected.name) missing or not of shape \(expected.shape)")
                }
                policy.parameters.replaceSubrange(at..<(at + count), with: t.values)
                at += count
            }
        }
        guard let mean = tensors["obs_norm.mean"], let variance = tensors["obs_norm.var"],
              mean.values.count == policy.observationSize, variance.values.count == policy.observationSize else {
            throw TrainError("\(url.path): obs_norm missing or of the wrong size")
        }
        if policy.choices == 0 {
            guard let logStd = tensors["actor.log_std"], logStd.values.count == policy.actionSize else {
                throw TrainError("\(url.path): actor.log_std missing or of the wrong size")
            }
            policy.parameters.replaceSubrange(policy.logStdOffset..<(policy.logStdOffset + policy.actionSize), with: logStd.values)
        }
        var norm: RunningMeanVariance?
        if meta["normalize_observations"] == "true" {
            var n = RunningMeanVariance(size: policy.observationSize)
            n.mean = mean.values.map(Double.init)
            n.variance = variance.values.map(Double.init)
            norm = n
        }
        return Checkpoint(metadata: metadata, policy: policy, observationNormalization: norm)
    }

    /// Weights (biases aside) of the actor that `metadata` and `convolutions` describe, or nil past
    /// `Int`'s range: a lower bound on the values a matching file holds, computed without allocating.
    static func actorWeights(_ metadata: Metadata, convolutions: [Convolution]) -> Int? {
        var total = 0, overflow = false
        func add(_ factors: Int...) {
            let product = factors.reduce((1, false)) { acc, f in
                let m = acc.0.multipliedReportingOverflow(by: f)
                return (m.partialValue, acc.1 || m.overflow)
            }
            let sum = total.addingReportingOverflow(product.0)
            total = sum.partialValue
            overflow = overflow || product.1 || sum.overflow
        }
        var input = metadata.observationSize
        if let image = metadata.image {
            var (h, w, c) = (image.height, image.width, image.channels)
            for layer in convolutions where layer.stride > 0 {
                add(layer.kernel, layer.kernel, c, layer.channels)
                (h, w, c) = ((h - layer.kernel) / layer.stride + 1, (w - layer.kernel) / layer.stride + 1, layer.channels)
            }
            let flat = h.multipliedReportingOverflow(by: w), all = flat.partialValue.multipliedReportingOverflow(by: c)
            overflow = overflow || flat.overflow || all.overflow
            input = all.partialValue
        }
        let outputs = metadata.actionChoices > 0 ? metadata.actionChoices : metadata.actionNames.count
        let sizes = [input] + metadata.hidden + [outputs]
        for k in 0..<(sizes.count - 1) { add(sizes[k], sizes[k + 1]) }
        return overflow ? nil : total
    }

    /// The policy's actions for `rows` raw observations (what `eval` and exports run): the means
    /// (Gaussian), or the most likely choice (categorical; the lowest index on a tie).
    public func actions(_ observations: [Double], rows: Int) -> [Double] {
        // The stored statistics are F32: normalize as a reader of the file would.
        let xs = normalizedAsStored(observations, rows: rows)
        var outputs: [Float] = [], values: [Float] = []
        xs.withUnsafeBufferPointer { policy.evaluate($0.baseAddress!, batch: rows, means: &outputs, values: &values) }
        guard policy.choices > 0 else { return outputs.map(Double.init) }
        let n = policy.choices
        return (0..<rows).map { r in
            var best = 0
            for i in 1..<n where outputs[r * n + i] > outputs[r * n + best] { best = i }
            return Double(best)
        }
    }

    /// Actions drawn from the policy's distribution (a categorical's choices by their
    /// probabilities, a Gaussian's around the means), as in training.
    func sampledActions(_ observations: [Double], rows: Int, random: inout TrainRandom) -> [Double] {
        let xs = normalizedAsStored(observations, rows: rows)
        var outputs: [Float] = [], values: [Float] = []
        xs.withUnsafeBufferPointer { policy.evaluate($0.baseAddress!, batch: rows, means: &outputs, values: &values) }
        guard policy.choices > 0 else {
            let logStd = policy.logStd
            return outputs.enumerated().map { k, mean in Double(mean) + Double(expf(logStd[k % logStd.count])) * random.normal() }
        }
        let n = policy.choices
        var logProbabilities: [Float] = []
        return outputs.withUnsafeBufferPointer { z in
            (0..<rows).map { r in
                ActorCritic.logSoftmax(z.baseAddress! + r * n, n, into: &logProbabilities)
                var u = Float(random.uniform())
                for i in 0..<n {
                    u -= expf(logProbabilities[i])
                    if u < 0 { return Double(i) }
                }
                return Double(n - 1)
            }
        }
    }

    /// Normalization with the F32 statistics the file holds, computed in F32 as a numpy reader would.
    private func normalizedAsStored(_ observations: [Double], rows: Int) -> [Float] {
        guard let n = observationNormalization else { return observations.map(Float.init) }
        let o = policy.observationSize
        var out = [Float](repeating: 0, count: rows * o)
        for r in 0..<rows {
            for j in 0..<o {
                let z = (Float(observations[r * o + j]) - Float(n.mean[j])) / (Float(n.variance[j]) + 1e-8).squareRoot()
                out[r * o + j] = min(max(z, -10), 10)
            }
        }
        return out
    }
}
