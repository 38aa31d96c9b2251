import Testing
@testable import CollectKit

/// `sim-collect --action-noise`: seeded Gaussian noise on another policy's actions, within the bounds.
@Suite struct NoisyPolicyTests {
    /// Always the same action, so what changes is the noise.
    struct Constant: Policy {
        var value: Double
        var output: PolicyOutput { .actions }
        var actionNames: [String] { ["u"] }
        mutating func act(env: Int, observation: ArraySlice<Double>, time: Double) -> [Double] { [value] }
        mutating func reset(env: Int) {}
    }

    static let task = TaskInfo(name: "t", observationNames: ["x"], actionNames: ["u"], actionLow: [-2], actionHigh: [2])

    static func draws(_ policy: inout NoisyPolicy, env: Int, count: Int) -> [Double] {
        (0..<count).map { _ in policy.act(env: env, observation: [0], time: 0)[0] }
    }

    @Test func seededPerEnvClippedAndOfTheAskedSpread() throws {
        var a = try NoisyPolicy(Constant(value: 0.5), std: 0.25, task: Self.task, envs: 2, seed: 9)
        var b = try NoisyPolicy(Constant(value: 0.5), std: 0.25, task: Self.task, envs: 2, seed: 9)
        let xs = Self.draws(&a, env: 1, count: 20_000)
        #expect(xs == Self.draws(&b, env: 1, count: 20_000))          // the same seed and env: the same actions
        #expect(xs != Self.draws(&a, env: 0, count: 20_000))          // another env: another stream
        let mean = xs.reduce(0, +) / Double(xs.count)
        let sd = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)).squareRoot()
        #expect(abs(mean - 0.5) < 0.02)
        #expect(abs(sd - 0.25 * 2) < 0.02)                             // 0.25 of the half range (2)
        var edge = try NoisyPolicy(Constant(value: 1.9), std: 1, task: Self.task, envs: 1, seed: 1)
        let clipped = Self.draws(&edge, env: 0, count: 1_000)
        #expect(clipped.allSatisfy { $0 >= -2 && $0 <= 2 } && clipped.contains(2))
        var none = try NoisyPolicy(Constant(value: 0.5), std: 0, task: Self.task, envs: 1, seed: 1)
        #expect(Self.draws(&none, env: 0, count: 10).allSatisfy { $0 == 0.5 })
    }

    @Test(arguments: [-0.1, 11, .nan, .infinity])
    func outOfRangeSpreadsAreRefused(std: Double) {
        #expect(throws: DatasetError.self) { try NoisyPolicy(Constant(value: 0), std: std, task: Self.task, envs: 1, seed: 0) }
    }
}
