import Foundation

/// An image a policy sees: height × width × channels values in HWC order (row-major from the
/// top-left pixel, the channels of a pixel together: r, g, b for an rgb8 camera), each byte / 255,
/// so in [0, 1]. Pixel observations are not normalized otherwise.
public struct ImageInput: Codable, Sendable, Equatable {
    /// The scene camera that draws it.
    public var camera: String
    public var height: Int
    public var width: Int
    public var channels: Int
    /// Always "HWC".
    public var layout = "HWC"

    public init(camera: String, height: Int, width: Int, channels: Int) {
        self.camera = camera
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// Values per image.
    public var size: Int { height * width * channels }
}

/// One convolution layer: `channels` filters of `kernel` × `kernel` pixels moved by `stride`, no
/// padding (a side of n gives (n - kernel) / stride + 1), ReLU after it.
public struct Convolution: Codable, Sendable, Equatable {
    public var channels: Int
    public var kernel: Int
    public var stride: Int

    public init(channels: Int, kernel: Int, stride: Int) {
        self.channels = channels
        self.kernel = kernel
        self.stride = stride
    }

    /// Parses `16:5:2,32:3:2` (channels:kernel:stride per layer); nil when malformed.
    public static func parse(_ text: String) -> [Convolution]? {
        let layers = text.split(separator: ",").map { part -> Convolution? in
            let v = part.split(separator: ":").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard v.count == 3, let c = v[0], let k = v[1], let s = v[2] else { return nil }
            return Convolution(channels: c, kernel: k, stride: s)
        }
        guard !layers.isEmpty, layers.allSatisfy({ $0 != nil }) else { return nil }
        return layers.map { $0! }
    }
}

/// A small convolutional network over a slice of a shared parameter buffer: convolution layers
/// (ReLU), the last one's feature map flattened (HWC), then dense layers (ReLU between them, the
/// last linear). Per layer the buffer holds the weights then the biases: a convolution's weight is
/// [kernel, kernel, in channels, out channels] (TensorFlow's HWIO: a patch, read in HWC order, times
/// the weight as a matrix), a dense layer's [inputs, outputs].
///
/// A convolution runs as im2col (each output position's patch copied into a row, kernel × channels
/// values at a time) and then the dense kernels (`Kernels.linear` with one row per position), so it
/// is as fast as those loops; the backward pass is the same products transposed and col2im. One
/// thread, fixed order: same inputs, same bits.
final class CNN: Network {
    struct ConvolutionLayer {
        let inHeight: Int, inWidth: Int, inChannels: Int
        let kernel: Int, stride: Int, outChannels: Int
        var outHeight: Int { (inHeight - kernel) / stride + 1 }
        var outWidth: Int { (inWidth - kernel) / stride + 1 }
        /// Values per patch (im2col row) and patches per image.
        var patch: Int { kernel * kernel * inChannels }
        var positions: Int { outHeight * outWidth }
        var inSize: Int { inHeight * inWidth * inChannels }
        var outSize: Int { positions * outChannels }
        var parameterCount: Int { patch * outChannels + outChannels }
    }

    let image: ImageInput
    let convolutions: [ConvolutionLayer]
    /// Dense widths, the flattened feature map first and the outputs last.
    let dense: [Int]
    let offset: Int
    /// Per layer (convolutions, then dense): its input's values per row; sizes[last] the outputs.
    private let sizes: [Int]
    /// activations[l]: input of layer l (activations[0] the images), the last the outputs.
    private var activations: [[Float]]
    private var gradA: [Float] = [], gradB: [Float] = []
    /// One image's im2col rows (and their gradients), and a transposed weight matrix.
    private var columns: [Float] = [], columnGradient: [Float] = []
    private var transposed: [Float] = []
    private var capacity = 0

    /// Why this shape cannot be built, or nil.
    static func problem(image: ImageInput, convolutions: [Convolution], hidden: [Int]) -> String? {
        guard (1...4096).contains(image.height), (1...4096).contains(image.width), (1...16).contains(image.channels) else {
            return "image of \(image.width)x\(image.height)x\(image.channels): sides in 1...4096, channels in 1...16"
        }
        guard !convolutions.isEmpty, convolutions.count <= 8 else { return "1 to 8 convolution layers" }
        var (h, w) = (image.height, image.width)
        for (i, c) in convolutions.enumerated() {
            guard (1...1024).contains(c.channels), (1...16).contains(c.kernel), (1...16).contains(c.stride) else {
                return "convolution \(i): channels in 1...1024, kernel and stride in 1...16"
            }
            guard c.kernel <= h, c.kernel <= w else { return "convolution \(i): a \(c.kernel)-pixel kernel over a \(w)x\(h) map" }
            (h, w) = ((h - c.kernel) / c.stride + 1, (w - c.kernel) / c.stride + 1)
        }
        guard !hidden.isEmpty, hidden.count <= 8, hidden.allSatisfy({ (1...4096).contains($0) }) else { return "hidden: 1 to 8 widths in 1...4096" }
        return nil
    }

    /// `hidden` are the dense layers' widths after the convolutions; `outputs` the last layer's.
    init(image: ImageInput, convolutions spec: [Convolution], hidden: [Int], outputs: Int, offset: Int) {
        self.image = image
        self.offset = offset
        var layers: [ConvolutionLayer] = []
        var (h, w, c) = (image.height, image.width, image.channels)
        for s in spec {
            let layer = ConvolutionLayer(inHeight: h, inWidth: w, inChannels: c, kernel: s.kernel, stride: s.stride, outChannels: s.channels)
            layers.append(layer)
            (h, w, c) = (layer.outHeight, layer.outWidth, layer.outChannels)
        }
        convolutions = layers
        dense = [h * w * c] + hidden + [outputs]
        sizes = layers.map(\.inSize) + dense
        activations = Array(repeating: [], count: sizes.count)
    }

    var inputs: Int { image.size }
    var outputs: Int { dense.last! }
    var parameterCount: Int {
        convolutions.reduce(0) { $0 + $1.parameterCount } + MLP.parameterCount(dense)
    }

    /// `conv.<l>.weight` ([kernel, kernel, in, out]) and `conv.<l>.bias`, then `dense.<l>.weight`
    /// ([inputs, outputs]) and `dense.<l>.bias`.
    var tensors: [(name: String, shape: [Int])] {
        var out: [(name: String, shape: [Int])] = []
        for (l, c) in convolutions.enumerated() {
            out.append(("conv.\(l).weight", [c.kernel, c.kernel, c.inChannels, c.outChannels]))
            out.append(("conv.\(l).bias", [c.outChannels]))
        }
        for l in 0..<(dense.count - 1) {
            out.append(("dense.\(l).weight", [dense[l], dense[l + 1]]))
            out.append(("dense.\(l).bias", [dense[l + 1]]))
        }
        return out
    }

    /// Orthogonal weights (a convolution's as its patch × channels matrix), zero biases: CleanRL's
    /// Atari PPO initialization (gain √2 for hidden layers).
    func initialize(_ params: UnsafeMutablePointer<Float>, random: inout TrainRandom, hiddenGain: Float, outputGain: Float) {
        var layers: [(inputs: Int, outputs: Int)] = convolutions.map { ($0.patch, $0.outChannels) }
        for l in 0..<(dense.count - 1) { layers.append((dense[l], dense[l + 1])) }
        Orthogonal.initialize(params + offset, layers: layers, random: &random, hiddenGain: hiddenGain, outputGain: outputGain)
    }

    private func reserve(_ batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        for l in 0..<sizes.count { activations[l] = [Float](repeating: 0, count: batch * sizes[l]) }
        let widest = sizes.max()!
        gradA = [Float](repeating: 0, count: batch * widest)
        gradB = [Float](repeating: 0, count: batch * widest)
        let patches = convolutions.map { $0.positions * $0.patch }.max() ?? 1
        columns = [Float](repeating: 0, count: patches)
        columnGradient = [Float](repeating: 0, count: patches)
        var matrices = convolutions.map { $0.patch * $0.outChannels }
        for l in 0..<(dense.count - 1) { matrices.append(dense[l] * dense[l + 1]) }
        transposed = [Float](repeating: 0, count: matrices.max()!)
    }

    /// Copies each output position's patch of one HWC image into a row of `cols`.
    private static func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, _ c: ConvolutionLayer) {
        let run = c.kernel * c.inChannels
        var row = cols
        for oy in 0..<c.outHeight {
            for ox in 0..<c.outWidth {
                for ky in 0..<c.kernel {
                    row.update(from: x + ((oy * c.stride + ky) * c.inWidth + ox * c.stride) * c.inChannels, count: run)
                    row += run
                }
            }
        }
    }

    /// The reverse of `im2col`: adds each row of `cols` back onto the pixels of its patch (dx zeroed first).
    private static func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ c: ConvolutionLayer) {
        let run = c.kernel * c.inChannels
        dx.update(repeating: 0, count: c.inSize)
        var row = cols
        for oy in 0..<c.outHeight {
            for ox in 0..<c.outWidth {
                for ky in 0..<c.kernel {
                    let target = dx + ((oy * c.stride + ky) * c.inWidth + ox * c.stride) * c.inChannels
                    for k in 0..<run { target[k] += row[k] }
                    row += run
                }
            }
        }
    }

    @discardableResult
    func forward(_ params: UnsafePointer<Float>, _ input: UnsafePointer<Float>, batch: Int) -> UnsafeBufferPointer<Float> {
        reserve(batch)
        activations[0].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: input, count: batch * sizes[0]) }
        var at = offset
        for (l, c) in convolutions.enumerated() {
            activations[l].withUnsafeBufferPointer { x in
                activations[l + 1].withUnsafeMutableBufferPointer { y in
                    columns.withUnsafeMutableBufferPointer { cols in
                        for b in 0..<batch {
                            Self.im2col(x.baseAddress! + b * c.inSize, cols.baseAddress!, c)
                            Kernels.linear(cols.baseAddress!, params + at, params + at + c.patch * c.outChannels, y.baseAddress! + b * c.outSize,
                                           batch: c.positions, inputs: c.patch, outputs: c.outChannels)
                        }
                    }
                    Kernels.relu(y.baseAddress!, count: batch * c.outSize)
                }
            }
            at += c.parameterCount
        }
        let first = convolutions.count
        for d in 0..<(dense.count - 1) {
            let (n, m) = (dense[d], dense[d + 1])
            let l = first + d
            activations[l].withUnsafeBufferPointer { x in
                activations[l + 1].withUnsafeMutableBufferPointer { y in
                    Kernels.linear(x.baseAddress!, params + at, params + at + n * m, y.baseAddress!, batch: batch, inputs: n, outputs: m)
                    if d < dense.count - 2 { Kernels.relu(y.baseAddress!, count: batch * m) }
                }
            }
            at += n * m + m
        }
        return activations[sizes.count - 1].withUnsafeBufferPointer { UnsafeBufferPointer(rebasing: $0[0..<(batch * outputs)]) }
    }

    func backward(_ params: UnsafePointer<Float>, _ grads: UnsafeMutablePointer<Float>, _ dOutput: UnsafePointer<Float>, batch: Int) {
        var starts: [Int] = []
        var at = offset
        for c in convolutions {
            starts.append(at)
            at += c.parameterCount
        }
        for d in 0..<(dense.count - 1) {
            starts.append(at)
            at += dense[d] * dense[d + 1] + dense[d + 1]
        }
        gradA.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: dOutput, count: batch * outputs) }
        let first = convolutions.count
        // Dense layers, last first: gradA holds the gradient of layer l's output.
        for d in stride(from: dense.count - 2, through: 0, by: -1) {
            let (n, m) = (dense[d], dense[d + 1])
            let l = first + d, w = starts[l]
            activations[l].withUnsafeBufferPointer { x in
                gradA.withUnsafeMutableBufferPointer { dy in
                    Kernels.linearWeightGradient(x.baseAddress!, dy.baseAddress!, grads + w, grads + w + n * m, batch: batch, inputs: n, outputs: m)
                    guard l > 0 else { return }
                    gradB.withUnsafeMutableBufferPointer { dx in
                        transposed.withUnsafeMutableBufferPointer { t in
                            Kernels.linearInputGradient(dy.baseAddress!, params + w, dx.baseAddress!, batch: batch, inputs: n, outputs: m,
                                                        scratch: t.baseAddress!)
                        }
                        // Through the ReLU of layer l's input (zero where it was cut).
                        for k in 0..<(batch * n) where x[k] <= 0 { dx[k] = 0 }
                    }
                }
            }
            swap(&gradA, &gradB)
        }
        // Convolutions, last first, one image at a time.
        for l in stride(from: first - 1, through: 0, by: -1) {
            let c = convolutions[l], w = starts[l]
            let weights = c.patch * c.outChannels
            transposed.withUnsafeMutableBufferPointer { Kernels.transpose(params + w, into: $0.baseAddress!, inputs: c.patch, outputs: c.outChannels) }
            activations[l].withUnsafeBufferPointer { x in
                gradA.withUnsafeBufferPointer { dy in
                    gradB.withUnsafeMutableBufferPointer { dx in
                        columns.withUnsafeMutableBufferPointer { cols in
                            columnGradient.withUnsafeMutableBufferPointer { dcols in
                                transposed.withUnsafeBufferPointer { t in
                                    for b in 0..<batch {
                                        let xb = x.baseAddress! + b * c.inSize, dyb = dy.baseAddress! + b * c.outSize
                                        Self.im2col(xb, cols.baseAddress!, c)
                                        Kernels.linearWeightGradient(cols.baseAddress!, dyb, grads + w, grads + w + weights,
                                                                     batch: c.positions, inputs: c.patch, outputs: c.outChannels)
                                        guard l > 0 else { continue }
                                        Kernels.linearInputGradient(dyb, transposed: t.baseAddress!, dcols.baseAddress!,
                                                                    batch: c.positions, inputs: c.patch, outputs: c.outChannels)
                                        let dxb = dx.baseAddress! + b * c.inSize
                                        Self.col2im(dcols.baseAddress!, dxb, c)
                                        for k in 0..<c.inSize where xb[k] <= 0 { dxb[k] = 0 }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            swap(&gradA, &gradB)
        }
    }
}
