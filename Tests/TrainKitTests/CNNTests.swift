import Foundation
import Testing
@testable import TrainKit

@Suite struct CNNTests {
    /// An odd-sized image and layers (widths not multiples of 8, strides 1 and 2, an offset) so that
    /// every kernel's remainder path runs.
    static func network(offset: Int = 3) -> CNN {
        CNN(image: ImageInput(camera: "c", height: 9, width: 11, channels: 3),
            convolutions: [Convolution(channels: 5, kernel: 3, stride: 2), Convolution(channels: 11, kernel: 2, stride: 1)],
            hidden: [13], outputs: 3, offset: offset)
    }

    @Test func shapesAndTensorsCoverTheParameters() {
        let net = Self.network()
        // 9x11 -> 4x5 (3x3, stride 2) -> 3x4 (2x2, stride 1): 12 positions x 11 channels.
        #expect(net.dense == [132, 13, 3])
        #expect(net.tensors.map(\.name) == ["conv.0.weight", "conv.0.bias", "conv.1.weight", "conv.1.bias",
                                            "dense.0.weight", "dense.0.bias", "dense.1.weight", "dense.1.bias"])
        #expect(net.tensors[0].shape == [3, 3, 3, 5] && net.tensors[2].shape == [2, 2, 5, 11])
        #expect(net.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } == net.parameterCount)
        #expect(net.parameterCount == (27 * 5 + 5) + (20 * 11 + 11) + (132 * 13 + 13) + (13 * 3 + 3))
    }

    /// One output against a direct convolution written from the definition (HWC, HWIO, no padding).
    @Test func forwardMatchesADirectConvolution() {
        let net = CNN(image: ImageInput(camera: "c", height: 7, width: 6, channels: 2),
                      convolutions: [Convolution(channels: 3, kernel: 3, stride: 2)], hidden: [4], outputs: 2, offset: 0)
        var random = TrainRandom(seed: 5)
        let params = (0..<net.parameterCount).map { _ in Float(random.normal()) * 0.5 }
        let input = (0..<(7 * 6 * 2)).map { _ in Float(random.uniform()) }
        let y = params.withUnsafeBufferPointer { p in input.withUnsafeBufferPointer { Array(net.forward(p.baseAddress!, $0.baseAddress!, batch: 1)) } }
        // 7x6 -> 3x2 positions of 3 channels; then dense 18 -> 4 (ReLU) -> 2.
        var feature = [Double](repeating: 0, count: 18)
        for oy in 0..<3 {
            for ox in 0..<2 {
                for o in 0..<3 {
                    var z = Double(params[3 * 3 * 2 * 3 + o])
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            for c in 0..<2 {
                                let x = Double(input[((oy * 2 + ky) * 6 + ox * 2 + kx) * 2 + c])
                                z += x * Double(params[((ky * 3 + kx) * 2 + c) * 3 + o])
                            }
                        }
                    }
                    feature[(oy * 2 + ox) * 3 + o] = max(z, 0)
                }
            }
        }
        var at = 3 * 3 * 2 * 3 + 3
        var hidden = [Double](repeating: 0, count: 4)
        for j in 0..<4 {
            var z = Double(params[at + 18 * 4 + j])
            for k in 0..<18 { z += feature[k] * Double(params[at + k * 4 + j]) }
            hidden[j] = max(z, 0)
        }
        at += 18 * 4 + 4
        for j in 0..<2 {
            var z = Double(params[at + 4 * 2 + j])
            for k in 0..<4 { z += hidden[k] * Double(params[at + k * 2 + j]) }
            #expect(abs(z - Double(y[j])) < 1e-4, "output \(j): \(z) against \(y[j])")
        }
    }

    /// backward against central finite differences of Σ w·y, for every parameter.
    @Test func backwardMatchesFiniteDifferences() {
        var random = TrainRandom(seed: 11)
        let net = Self.network()
        var params = [Float](repeating: 0, count: 3 + net.parameterCount)
        params.withUnsafeMutableBufferPointer { net.initialize($0.baseAddress!, random: &random, hiddenGain: 1.4, outputGain: 0.7) }
        // Biases away from zero, so that few ReLU inputs sit near their kink.
        for k in 3..<params.count { params[k] += Float(random.normal()) * 0.05 }
        let batch = 3
        let input = (0..<(batch * net.inputs)).map { _ in Float(random.uniform()) }
        let weights = (0..<(batch * 3)).map { _ in Float(random.normal()) }
        func loss(_ p: [Float]) -> Double {
            let y = p.withUnsafeBufferPointer { p in input.withUnsafeBufferPointer { Array(net.forward(p.baseAddress!, $0.baseAddress!, batch: batch)) } }
            return zip(y, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = loss(params)
        var grads = [Float](repeating: 0, count: params.count)
        params.withUnsafeBufferPointer { p in
            grads.withUnsafeMutableBufferPointer { g in
                weights.withUnsafeBufferPointer { net.backward(p.baseAddress!, g.baseAddress!, $0.baseAddress!, batch: batch) }
            }
        }
        #expect(grads[0..<3].allSatisfy { $0 == 0 }, "nothing before the offset")
        // Every convolution parameter, every other dense one.
        let convolutionEnd = 3 + net.convolutions.reduce(0) { $0 + $1.parameterCount }
        var checked = 0, bad: [String] = []
        for k in Array(3..<convolutionEnd) + Array(stride(from: convolutionEnd, to: params.count, by: 2)) {
            var plus = params, minus = params
            plus[k] += 1e-2
            minus[k] -= 1e-2
            let numeric = (loss(plus) - loss(minus)) / 2e-2
            if abs(numeric - Double(grads[k])) > 2e-3 * max(1, abs(numeric)) {
                // A step across a ReLU kink breaks the quotient: a smaller step must agree then.
                var plus = params, minus = params
                plus[k] += 1e-3
                minus[k] -= 1e-3
                let fine = (loss(plus) - loss(minus)) / 2e-3
                if abs(fine - Double(grads[k])) > 2e-3 * max(1, abs(fine)) { bad.append("\(k): \(numeric), \(fine) against \(grads[k])") }
            }
            checked += 1
        }
        #expect(checked > 1000)
        #expect(bad.count <= checked / 200, "\(bad.count) of \(checked) parameters disagree: \(bad.prefix(5))")
    }

    /// The same seed gives the same parameters and outputs; the checkpoint layout round-trips.
    @Test func deterministicAndRoundTripsThroughACheckpoint() throws {
        let image = ImageInput(camera: "pixels", height: 12, width: 16, channels: 3)
        let convolutions = [Convolution(channels: 4, kernel: 4, stride: 2), Convolution(channels: 8, kernel: 3, stride: 1)]
        func policy(_ seed: UInt64) -> ActorCritic {
            var random = TrainRandom(seed: seed)
            return ActorCritic(observationSize: image.size, actionSize: 1, choices: 6, hidden: [16], image: image, convolutions: convolutions, random: &random)
        }
        let a = policy(3), b = policy(3), c = policy(4)
        #expect(a.parameters == b.parameters && a.parameters != c.parameters)
        var configuration = PPOConfiguration()
        configuration.hidden = [16]
        configuration.convolutions = convolutions
        configuration.normalizeObservations = false
        let checkpoint = Checkpoint(
            metadata: .init(task: "object_tracker", scene: "s", observationNames: [], actionNames: ["steering"], actionLow: [0], actionHigh: [5],
                            actionChoices: 6, hidden: [16], reward: "", envSteps: 0, seed: 3, configuration: configuration, versions: [:], image: image),
            policy: a, observationNormalization: nil)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cnn-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try checkpoint.write(to: url)
        let back = try Checkpoint.read(url)
        #expect(back.metadata.image == image && back.policy.parameters == a.parameters && back.policy.convolutions == convolutions)
        var random = TrainRandom(seed: 9)
        let rows = (0..<(2 * image.size)).map { _ in random.uniform() }
        #expect(back.actions(rows, rows: 2) == checkpoint.actions(rows, rows: 2))
        #expect(throws: (any Error).self) { _ = try ONNXExport.model(back) }
    }
}
