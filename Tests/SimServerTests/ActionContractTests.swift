import Foundation
import Testing
@testable import SimEngine

/// One action contract for `/sim/step` and `/env_i/action`: sizes and finiteness are checked,
/// out-of-bounds values clipped.
@Suite struct ActionContractTests {
    @Test func sizeAndFinitenessAreCheckedBoundsClipped() {
        let c = ActionContract(low: [-1, 0], high: [1, 2], names: ["push", "lift"])
        #expect(c.violation([0, 1]) == nil)
        #expect(c.violation([1e308, -1e308]) == nil)
        #expect(c.violation([0]) == "expected 2 action values, got 1")
        #expect(c.violation([0, .nan]) == "action lift is nan; actions must be finite")
        #expect(c.violation([-.infinity, 0]) == "action push is -inf; actions must be finite")
        #expect(c.clipped(5, 0) == 1 && c.clipped(-5, 1) == 0 && c.clipped(0.5, 1) == 0.5)
        #expect(c.clipped(5e-324, 0) == 5e-324)
    }

    @Test func theWorldStepsAClippedActionLikeItsBound() throws {
        let a = try WorldTests.world("Scenes/cartpole", envs: 1, seed: 4, threads: 1)
        let b = try WorldTests.world("Scenes/cartpole", envs: 1, seed: 4, threads: 1)
        for _ in 0..<20 {
            a.step([0], actions: [1e308])
            b.step([0], actions: [1])
        }
        #expect(a.envs[0].observation == b.envs[0].observation)
        #expect(a.actions.names == ["cart_force"])
    }

    /// A discrete action is a whole-number index in range, refused (not clipped) otherwise; the
    /// discrete cartpole pushes full force either way.
    @Test func discreteActionsAreWholeIndicesInRange() throws {
        let c = ActionContract(low: [0], high: [2], names: ["push"], choices: 3)
        for ok in [0.0, 1, 2, -0.0] { #expect(c.violation([ok]) == nil, "\(ok)") }
        for bad in [-1.0, 3, 0.5, 2.0000001, 1e308, -5e-324] {
            #expect(c.violation([bad])?.contains("a discrete action is a whole number in 0...2") == true, "\(bad)")
        }
        let w = try WorldTests.world("Scenes/cartpole_discrete", envs: 1, seed: 4, threads: 1)
        let continuous = try WorldTests.world("Scenes/cartpole", envs: 1, seed: 4, threads: 1)
        #expect(w.description.actionChoices == 2 && w.actionLow == [0] && w.actionHigh == [1] && w.actions.names == ["push"])
        for _ in 0..<10 {
            w.step([0], actions: [1])               // right, full force
            continuous.step([0], actions: [1])
        }
        #expect(w.envs[0].observation == continuous.envs[0].observation)
    }
}
