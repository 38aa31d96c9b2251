import Foundation

/// A network over a slice of a shared parameter buffer (`MLP`, `CNN`): what the actor-critic, PPO
/// and checkpoints need of one. The parameters are `parameterCount` floats from `offset`, laid out
/// as `tensors` says, in order; so Adam, gradient clipping and checkpoints see one flat buffer.
/// Called from the learner's one thread; a network keeps its activations from the last `forward`
/// for `backward`.
protocol Network: AnyObject {
    /// Where this network's parameters start in the shared buffer.
    var offset: Int { get }
    var parameterCount: Int { get }
    /// Values per input row and per output row.
    var inputs: Int { get }
    var outputs: Int { get }
    /// The parameters' tensors in buffer order: names as checkpoints write them after `actor.` or
    /// `critic.`, and shapes.
    var tensors: [(name: String, shape: [Int])] { get }
    /// Orthogonal weights (gain `hiddenGain` for hidden layers, `outputGain` for the last), zero biases.
    func initialize(_ params: UnsafeMutablePointer<Float>, random: inout TrainRandom, hiddenGain: Float, outputGain: Float)
    /// The outputs for `batch` rows of `input`; valid until the next call.
    @discardableResult
    func forward(_ params: UnsafePointer<Float>, _ input: UnsafePointer<Float>, batch: Int) -> UnsafeBufferPointer<Float>
    /// Adds the gradient of the loss to `grads` (same layout as the parameters), given the
    /// gradient `dOutput` with respect to the last `forward`'s outputs (`batch` rows).
    func backward(_ params: UnsafePointer<Float>, _ grads: UnsafeMutablePointer<Float>, _ dOutput: UnsafePointer<Float>, batch: Int)
}

/// A multilayer perceptron over a slice of a shared parameter buffer: dense layers with tanh
/// between them and a linear output. Per layer the buffer holds the weights (inputs × outputs,
/// row-major) then the biases. Keeps its activations from the last `forward` for `backward`.
final class MLP: Network {
    /// Layer widths, input first.
    let sizes: [Int]
    /// Where this network's parameters start in the shared buffer.
    let offset: Int
    /// activations[0] is the input; activations[l] the output of layer l (after tanh, except the last).
    private var activations: [[Float]]
    private var gradA: [Float] = []
    private var gradB: [Float] = []
    /// A transposed weight matrix, for the input gradient.
    private var transposed: [Float] = []
    private var capacity = 0

    init(sizes: [Int], offset: Int) {
        self.sizes = sizes
        self.offset = offset
        activations = Array(repeating: [], count: sizes.count)
    }

    /// Number of parameters: Σ (in·out + out).
    static func parameterCount(_ sizes: [Int]) -> Int {
        zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + $1.1 }
    }

    var parameterCount: Int { Self.parameterCount(sizes) }
    var outputs: Int { sizes.last! }
    var inputs: Int { sizes[0] }
    /// `layers.<l>.weight` (inputs × outputs) and `layers.<l>.bias` per layer.
    var tensors: [(name: String, shape: [Int])] {
        var out: [(name: String, shape: [Int])] = []
        for l in 0..<(sizes.count - 1) {
            out.append(("layers.\(l).weight", [sizes[l], sizes[l + 1]]))
            out.append(("layers.\(l).bias", [sizes[l + 1]]))
        }
        return out
    }

    /// Orthogonal weights (gain `hiddenGain` for hidden layers, `outputGain` for the last), zero
    /// biases: Stable-Baselines3's initialization.
    func initialize(_ params: UnsafeMutablePointer<Float>, random: inout TrainRandom, hiddenGain: Float, outputGain: Float) {
        Orthogonal.initialize(params + offset, layers: Array(zip(sizes, sizes.dropFirst())), random: &random, hiddenGain: hiddenGain, outputGain: outputGain)
    }

    private func reserve(_ batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        for l in 0..<sizes.count { activations[l] = [Float](repeating: 0, count: batch * sizes[l]) }
        let widest = sizes.max()!
        gradA = [Float](repeating: 0, count: batch * widest)
        gradB = [Float](repeating: 0, count: batch * widest)
        transposed = [Float](repeating: 0, count: zip(sizes, sizes.dropFirst()).map { $0 * $1 }.max() ?? 1)
    }

    /// The outputs for `batch` rows of `input`; valid until the next call.
    @discardableResult
    func forward(_ params: UnsafePointer<Float>, _ input: UnsafePointer<Float>, batch: Int) -> UnsafeBufferPointer<Float> {
        reserve(batch)
        activations[0].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: input, count: batch * sizes[0]) }
        var at = offset
        for l in 0..<(sizes.count - 1) {
            let (n, m) = (sizes[l], sizes[l + 1])
            let last = l == sizes.count - 2
            activations[l].withUnsafeBufferPointer { x in
                activations[l + 1].withUnsafeMutableBufferPointer { y in
                    Kernels.linear(x.baseAddress!, params + at, params + at + n * m, y.baseAddress!, batch: batch, inputs: n, outputs: m)
                    if !last { Kernels.tanh(y.baseAddress!, count: batch * m) }
                }
            }
            at += n * m + m
        }
        return activations[sizes.count - 1].withUnsafeBufferPointer { UnsafeBufferPointer(rebasing: $0[0..<(batch * outputs)]) }
    }

    /// Adds the gradient of the loss to `grads` (same layout as the parameters), given the
    /// gradient `dOutput` with respect to the last `forward`'s outputs (`batch` rows).
    func backward(_ params: UnsafePointer<Float>, _ grads: UnsafeMutablePointer<Float>, _ dOutput: UnsafePointer<Float>, batch: Int) {
        var starts: [Int] = []
        var at = offset
        for l in 0..<(sizes.count - 1) {
            starts.append(at)
            at += sizes[l] * sizes[l + 1] + sizes[l + 1]
        }
        gradA.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: dOutput, count: batch * outputs) }
        for l in stride(from: sizes.count - 2, through: 0, by: -1) {
            let (n, m) = (sizes[l], sizes[l + 1])
            let w = starts[l]
            activations[l].withUnsafeBufferPointer { x in
                gradA.withUnsafeMutableBufferPointer { dy in
                    Kernels.linearWeightGradient(x.baseAddress!, dy.baseAddress!, grads + w, grads + w + n * m, batch: batch, inputs: n, outputs: m)
                    guard l > 0 else { return }
                    gradB.withUnsafeMutableBufferPointer { dx in
                        transposed.withUnsafeMutableBufferPointer { t in
                            Kernels.linearInputGradient(dy.baseAddress!, params + w, dx.baseAddress!, batch: batch, inputs: n, outputs: m,
                                                        scratch: t.baseAddress!)
                        }
                        // Through the tanh of layer l's input (activations[l] = tanh(z)).
                        for k in 0..<(batch * n) { dx[k] *= 1 - x[k] * x[k] }
                    }
                }
            }
            swap(&gradA, &gradB)
        }
    }
}

/// Orthogonal matrices (Saxe et al.), as `torch.nn.init.orthogonal_` makes them: QR of a Gaussian
/// matrix, signs fixed by R's diagonal, times a gain.
enum Orthogonal {
    /// Layers laid out one after another from `params` (inputs × outputs weights, then biases):
    /// orthogonal weights, gain `hiddenGain` but `outputGain` for the last layer; zero biases.
    static func initialize(_ params: UnsafeMutablePointer<Float>, layers: [(inputs: Int, outputs: Int)], random: inout TrainRandom,
                           hiddenGain: Float, outputGain: Float) {
        var at = 0
        for (l, (n, m)) in layers.enumerated() {
            let w = matrix(rows: n, columns: m, gain: l == layers.count - 1 ? outputGain : hiddenGain, random: &random)
            for k in 0..<(n * m) { params[at + k] = w[k] }
            at += n * m
            for k in 0..<m { params[at + k] = 0 }
            at += m
        }
    }

    static func matrix(rows: Int, columns: Int, gain: Float, random: inout TrainRandom) -> [Float] {
        // Orthonormalize the longer side's vectors (modified Gram-Schmidt in Double).
        let (long, short) = (max(rows, columns), min(rows, columns))
        var q = (0..<short).map { _ in (0..<long).map { _ in random.normal() } }
        for i in 0..<short {
            for j in 0..<i {
                let d = zip(q[i], q[j]).reduce(0) { $0 + $1.0 * $1.1 }
                for k in 0..<long { q[i][k] -= d * q[j][k] }
            }
            let norm = q[i].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in 0..<long { q[i][k] /= max(norm, 1e-12) }
        }
        var w = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                // Rows of q are orthonormal: lay them along the shorter side.
                w[r * columns + c] = gain * Float(rows >= columns ? q[c][r] : q[r][c])
            }
        }
        return w
    }
}

/// The learner's random numbers: SplitMix64, seeded; normal draws by Box-Muller. Same seed, same
/// sequence, on every machine.
struct TrainRandom {
    private var state: UInt64
    private var spare: Double?

    init(seed: UInt64) { state = seed ^ 0x5EED_0F_7EA1 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    mutating func normal() -> Double {
        if let s = spare {
            spare = nil
            return s
        }
        var u = uniform()
        while u <= 0 { u = uniform() }
        let v = uniform()
        let r = (-2 * Foundation.log(u)).squareRoot()
        spare = r * Foundation.sin(2 * Double.pi * v)
        return r * Foundation.cos(2 * Double.pi * v)
    }

    /// A uniformly shuffled 0..<n (Fisher-Yates).
    mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        guard n > 1 else { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }
}
