import Foundation
import Testing
@testable import TrainKit

@Suite struct KernelTests {
    /// The rational tanh against Foundation's, over the range activations take and beyond.
    @Test func tanhIsAccurate() {
        var xs: [Float] = []
        var x: Float = -20
        while x <= 20 { xs.append(x); x += 0.001 }
        xs += [0, -0, 1e-8, -1e-8, 1e-4, 3e-4, 7.9, 7.906, 8, 100, -100, .leastNormalMagnitude]
        var y = xs
        y.withUnsafeMutableBufferPointer { Kernels.tanh($0.baseAddress!, count: $0.count) }
        var worst: Float = 0, worstRelative: Float = 0
        for (a, b) in zip(xs, y) {
            let exact = Float(Foundation.tanh(Double(a)))
            worst = max(worst, abs(b - exact))
            if abs(exact) > 1e-30 { worstRelative = max(worstRelative, abs(b - exact) / abs(exact)) }
        }
        #expect(worst < 4e-7, "largest absolute error \(worst)")  // at most about 6 ulp of 1, where it saturates
        #expect(worstRelative < 1e-6, "largest relative error \(worstRelative)")
    }

    /// The MLP's backward pass against central finite differences of Σ w·y (in Double-checked Float).
    @Test func backwardMatchesFiniteDifferences() {
        var random = TrainRandom(seed: 7)
        let net = MLP(sizes: [5, 11, 9, 3], offset: 2)  // widths that are not multiples of 8; an offset
        var params = [Float](repeating: 0, count: 2 + net.parameterCount)
        params.withUnsafeMutableBufferPointer { net.initialize($0.baseAddress!, random: &random, hiddenGain: 1.4, outputGain: 0.7) }
        let batch = 4
        let input = (0..<(batch * 5)).map { _ in Float(random.normal()) }
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
        #expect(grads[0] == 0 && grads[1] == 0, "nothing before the offset")
        var checked = 0
        for k in stride(from: 2, to: params.count, by: 3) {
            var plus = params, minus = params
            plus[k] += 1e-2
            minus[k] -= 1e-2
            let numeric = (loss(plus) - loss(minus)) / 2e-2
            #expect(abs(numeric - Double(grads[k])) < 2e-3 * max(1, abs(numeric)), "parameter \(k): \(numeric) against \(grads[k])")
            checked += 1
        }
        #expect(checked > 50)
    }
}

@Suite struct FormatTests {
    @Test func safetensorsRoundTripsAndRefusesHostileHeaders() throws {
        let t = [SafeTensors.Tensor(name: "a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), .init(name: "empty", shape: [0], values: [])]
        let data = try SafeTensors.encode(t, metadata: ["k": "v"])
        let (back, meta) = try SafeTensors.decode(data)
        #expect(back["a"] == t[0] && back["empty"] == t[1] && meta == ["k": "v"])
        func file(_ header: String, data: Int = 0) -> Data {
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8))
            d.append(Data(count: data))
            return d
        }
        for header in [#"{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#,
                       #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775807]}}"#,
                       #"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                       #"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, "[1]", "{"] {
            #expect(throws: (any Error).self, "\(header)") { _ = try SafeTensors.decode(file(header, data: 16)) }
        }
        var huge = Data(count: 8)
        huge[7] = 0x7F
        #expect(throws: (any Error).self) { _ = try SafeTensors.decode(huge) }
    }

    @Test func crc32cMatchesTheReferenceValue() {
        // RFC 3720's test vector: 32 zero bytes.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

@Suite struct PPOUpdateTests {
    /// Rollouts that minibatches do not divide (the last takes the remainder), and fewer
    /// transitions than minibatches (a rollout shrunk by a lost server): the update runs on all of
    /// them, and stays deterministic.
    @Test(arguments: [(steps: 5, envs: 2, minibatches: 3), (steps: 2, envs: 1, minibatches: 8), (steps: 7, envs: 3, minibatches: 4)])
    func updatesAnyRolloutSize(steps: Int, envs: Int, minibatches: Int) {
        func run() -> [Float] {
            var c = PPOConfiguration()
            (c.steps, c.minibatches, c.epochs) = (steps, minibatches, 2)
            let learner = PPOLearner(configuration: c, observationSize: 3, actionSize: 2, envs: envs, seed: 5)
            var random = TrainRandom(seed: 9)
            for t in 0..<steps {
                let x = (0..<(envs * 3)).map { _ in Float(random.normal()) }
                let (acts, logp, values) = learner.act(x)
                for k in 0..<(envs * 3) { learner.observations[t * envs * 3 + k] = x[k] }
                for k in 0..<(envs * 2) { learner.actions[t * envs * 2 + k] = acts[k] }
                for e in 0..<envs {
                    learner.logProbabilities[t * envs + e] = logp[e]
                    learner.values[t * envs + e] = values[e]
                    learner.rewards[t * envs + e] = Float(random.normal())
                }
            }
            learner.computeAdvantages(lastValues: [Float](repeating: 0, count: envs))
            let stats = learner.update(progress: 0)
            #expect(stats.policyLoss.isFinite && stats.valueLoss.isFinite)
            return learner.policy.parameters
        }
        #expect(run() == run())
    }
}
