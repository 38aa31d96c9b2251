import BuiltinPlugins
import Foundation
import PluginAPI
import Testing
@testable import SimEngine

/// Scenes made from gymnasium's own MJCF files (Scenes/gym_*) with the generic robot and task:
/// they load, name their components after the model, and step with finite states.
@Suite struct GymnasiumSceneTests {
    @Test(arguments: [
        ("Scenes/gym_ant", 29, 8, "root_z", "hip_1"),
        ("Scenes/gym_humanoid", 47, 17, "root_qw", "abdomen_y"),
        ("Scenes/gym_inverted_pendulum", 4, 1, "hinge", "slide"),
    ])
    func loadsNamesAndSteps(scene: String, observationSize: Int, actionSize: Int, observation: String, action: String) throws {
        let w = try WorldTests.world(scene, envs: 4, seed: 3, threads: 2)
        #expect(w.observationSize == observationSize && w.actionSize == actionSize)
        #expect(w.description.observations.contains { $0.name == observation })
        #expect(w.description.actions.contains { $0.name == action })
        let ids = Array(0..<4)
        for s in 0..<100 {
            let actions = ids.flatMap { e in (0..<w.actionSize).map { _ in WorldTests.action(env: e, step: s) } }
            w.step(ids, actions: actions)
            let finite = w.envs.allSatisfy { env in env.observation.allSatisfy { $0.isFinite } }
            #expect(finite, "step \(s)")
        }
        let first = w.envs[0].observation
        let distinct = w.envs.contains { $0.observation != first }
        #expect(distinct, "every env in the same state after 100 random steps")
    }

    /// InvertedPendulum-v5's rule through joint_control's healthy range: random actions tip the pole
    /// past 0.2 rad within a few steps (gymnasium: about 6), every healthy step earns 1, the
    /// terminating one 0, and the next episode starts from the noisy upright state.
    @Test func pendulumTerminatesLikeGymnasium() throws {
        let w = try WorldTests.world("Scenes/gym_inverted_pendulum", envs: 8, seed: 5, threads: 2)
        #expect(w.description.rewardTerms.map(\.name) == ["healthy"])
        #expect(w.envs.allSatisfy { abs($0.observation[1]) <= 0.01 && $0.observation[1] != 0 })
        let ids = Array(0..<8)
        var ended = 0, healthySteps = 0, totalSteps = 0
        for s in 0..<200 {
            w.step(ids, actions: ids.map { WorldTests.action(env: $0, step: s) })
            for env in w.envs {
                totalSteps += 1
                if env.terminated {
                    ended += 1
                    #expect(env.reward == 0 && !env.success)
                    #expect(abs(env.finalObservation![1]) > 0.2)
                    #expect(abs(env.observation[1]) <= 0.01, "the next episode starts upright")
                } else {
                    healthySteps += 1
                    #expect(env.reward == 1 && abs(env.observation[1]) <= 0.2)
                }
            }
        }
        let meanLength = Double(totalSteps) / Double(max(1, ended))
        #expect(meanLength > 2 && meanLength < 30, "mean episode length \(meanLength)")
        #expect(healthySteps + ended == totalSteps)
    }

    @Test func healthyBoundsNameObservations() throws {
        let names = [Quantity("hinge", "rad"), Quantity("slide", "m")]
        let bounds = try JointControlTask.healthyBounds(["healthy_max.hinge": 0.2, "healthy_min.hinge": -0.2, "other": 1], observations: names)
        #expect(bounds.count == 1 && bounds[0].index == 0 && bounds[0].range == -0.2...0.2)
        #expect(throws: PluginError.self) { try JointControlTask.healthyBounds(["healthy_min.elbow": 0], observations: names) }
        #expect(throws: PluginError.self) { try JointControlTask.healthyBounds(["healthy_min.slide": 1, "healthy_max.slide": 0], observations: names) }
    }

    /// Next-step autoreset (gymnasium's default, EnvPool's) is the same-step run shifted: the ending
    /// step returns the final observation with its reward and flags, the env's next step ignores its
    /// action and returns the next episode's first observation, reward 0, not done.
    @Test func nextStepAutoresetIsTheSameStepRunShifted() throws {
        let envs = 3
        let same = try WorldTests.world("Scenes/gym_inverted_pendulum", envs: envs, seed: 8, threads: 2)
        let next = try WorldTests.world("Scenes/gym_inverted_pendulum", envs: envs, seed: 8, threads: 2)
        var sameRows = [[[Double]]](repeating: [], count: envs), nextRows = sameRows
        var sameMoves = [Int](repeating: 0, count: envs), nextMoves = sameMoves
        var resetSteps = 0
        for _ in 0..<120 {
            // Each env's k-th moving step gets action k, whichever run: a reset step takes none.
            let sameActions = (0..<envs).map { WorldTests.action(env: $0, step: sameMoves[$0]) }
            let nextActions = (0..<envs).map { e in next.envs[e].needsReset ? 99 : WorldTests.action(env: e, step: nextMoves[e]) }
            for e in 0..<envs where !next.envs[e].needsReset { nextMoves[e] += 1 }
            for e in 0..<envs { sameMoves[e] += 1 }
            same.step(Array(0..<envs), actions: sameActions, autoreset: .sameStep)
            next.step(Array(0..<envs), actions: nextActions, autoreset: .nextStep)
            for e in 0..<envs {
                let a = same.envs[e], b = next.envs[e]
                sameRows[e].append((a.finalObservation ?? a.observation) + [a.reward, a.terminated ? 1 : 0, a.truncated ? 1 : 0])
                if a.finalObservation != nil { sameRows[e].append(a.observation + [0, 0, 0]) }
                #expect(b.finalObservation == nil)
                nextRows[e].append(b.observation + [b.reward, b.terminated ? 1 : 0, b.truncated ? 1 : 0])
                if nextRows[e].last![5] == 0 && nextRows[e].last![4] == 0 && b.episode > 0 && b.steps == 0 { resetSteps += 1 }
            }
        }
        for e in 0..<envs {
            let n = min(sameRows[e].count, nextRows[e].count)
            #expect(n >= 120 && Array(sameRows[e].prefix(n)) == Array(nextRows[e].prefix(n)), "env \(e)")
        }
        #expect(resetSteps >= 3, "reset steps seen: \(resetSteps)")
        // /sim/reset of an env waiting for its next-step reset starts the next episode once.
        while !next.envs[0].needsReset { next.step([0], actions: [1], autoreset: .nextStep) }
        next.envs[0].events.removeAll()
        next.reset([0], seed: nil)
        #expect(!next.envs[0].needsReset && next.envs[0].events.map(\.kind) == [.started])
    }
}
