import BuiltinPlugins
import Foundation
import PluginAPI
import Testing
@testable import SimEngine
@testable import SimServer

/// The world without sockets: determinism, auto-reset, divergence.
@Suite struct WorldTests {
    static func world(_ scene: String = "Scenes/cartpole", envs: Int, seed: UInt64 = 42, threads: Int) throws -> World {
        let s = try Scene(directory: scene)
        let registry = PluginRegistry()
        BuiltinPlugins.register(into: registry)
        let task = try #require(registry.tasks[s.manifest.task])
        return try World(scene: s, taskType: task, robotType: registry.robots[s.manifest.robot], envCount: envs, seed: seed, threads: threads)
    }

    /// An action for (env, step) that does not depend on the env count.
    static func action(env: Int, step: Int) -> Double {
        var r = RandomSource(seed: 99, env: env, episode: UInt64(step))
        return r.uniform(-1...1)
    }

    /// Runs `steps` control steps; returns env `watch`'s observations and rewards, flattened.
    static func trajectory(envs: Int, threads: Int, watch: Int, steps: Int = 400) throws -> [Double] {
        let w = try world(envs: envs, threads: threads)
        let ids = Array(0..<envs)
        var out: [Double] = w.envs[watch].observation
        for step in 0..<steps {
            let actions = ids.map { action(env: $0, step: step) }
            w.step(ids, actions: actions)
            let env = w.envs[watch]
            out += env.observation + [env.reward, env.terminated ? 1 : 0, env.truncated ? 1 : 0] + (env.finalObservation ?? [])
        }
        return out
    }

    @Test func env3IsBitIdenticalAcrossEnvCountsAndThreads() throws {
        let reference = try Self.trajectory(envs: 4, threads: 1, watch: 3)
        let wide = try Self.trajectory(envs: 16, threads: 2, watch: 3)
        let narrow = try Self.trajectory(envs: 4, threads: 2, watch: 3)
        #expect(reference.count > 400 * 7)
        // Bit for bit: compare the IEEE patterns, not approximate values.
        #expect(reference.map(\.bitPattern) == wide.map(\.bitPattern))
        #expect(reference.map(\.bitPattern) == narrow.map(\.bitPattern))
        // And the trajectory is not trivial: episodes ended and the state moved.
        #expect(Set(reference).count > 100)
    }

    @Test func differentSeedsDiffer() throws {
        let a = try Self.world(envs: 2, seed: 1, threads: 1), b = try Self.world(envs: 2, seed: 2, threads: 1)
        #expect(a.envs[0].observation != b.envs[0].observation)
        #expect(a.envs[0].observation != a.envs[1].observation)
    }

    @Test func cartpoleFallsTerminatesAndAutoResets() throws {
        let w = try Self.world(envs: 2, threads: 1)
        var ended = 0
        for _ in 0..<200 {
            w.step([0, 1], actions: [0, 0])
            for env in w.envs where env.terminated {
                ended += 1
                let final = try #require(env.finalObservation)
                #expect(abs(final[0]) > Double.pi / 2 || abs(final[2]) > 3)   // failed state
                #expect(abs(env.observation[0]) <= 0.25 * Double.pi + 1e-9)  // fresh episode
                #expect(env.steps == 0)
                #expect(env.events.map(\.kind) == [.ended, .started])
                #expect(env.events[0].reason == "terminated" && env.events[0].steps > 0)
            }
            for env in w.envs { env.events.removeAll() }
        }
        #expect(ended >= 2)
    }

    @Test func rewardTermsFollowIsaacLab() throws {
        let w = try Self.world(envs: 1, threads: 1)
        w.step([0], actions: [0.5])
        let o = w.envs[0].observation, r = w.envs[0].reward
        let expected = 1.0 - o[0] * o[0] - 0.01 * abs(o[3]) - 0.005 * abs(o[1])
        #expect(abs(r - expected) < 1e-12)
        #expect(o[3] != 0)  // the 50 N push moved the cart
    }

    @Test func truncatesAtTheEpisodeLength() throws {
        let w = try Self.world("Scenes/test/pendulum", envs: 1, threads: 1)
        let steps = w.maxSteps
        for _ in 0..<(steps - 1) { w.step([0], actions: [Double](repeating: 0, count: w.actionSize)) }
        #expect(!w.envs[0].truncated)
        w.step([0], actions: [Double](repeating: 0, count: w.actionSize))
        #expect(w.envs[0].truncated && !w.envs[0].terminated)
        #expect(w.envs[0].finalObservation != nil)
    }

    @Test func divergingEnvIsResetAndReported() throws {
        let w = try Self.world("Scenes/test/diverging", envs: 2, threads: 1)
        var diverged = false
        for _ in 0..<2000 where !diverged {
            w.step([0, 1], actions: [Double](repeating: 0, count: 2 * w.actionSize))
            diverged = w.envs[0].events.contains { $0.kind == .ended && $0.reason == "diverged" }
            for env in w.envs { env.events.removeAll() }
        }
        #expect(diverged)
        // The reset state is finite again and the world keeps stepping.
        #expect(w.envs.allSatisfy { $0.observation.allSatisfy(\.isFinite) })
        w.step([0, 1], actions: [Double](repeating: 0, count: 2 * w.actionSize))
    }

    /// Under next-step autoreset a diverged env waits for its next step in the model's initial state,
    /// never in the broken one; a same-step call on a waiting env starts the episode and steps it.
    @Test func divergedEnvWaitsInAFiniteState() throws {
        let w = try Self.world("Scenes/test/diverging", envs: 2, threads: 1)
        let zeros = [Double](repeating: 0, count: 2 * w.actionSize)
        var steps = 0
        while !w.envs[0].needsReset, steps < 2000 {
            w.step([0, 1], actions: zeros, autoreset: .nextStep)
            steps += 1
        }
        #expect(w.envs[0].needsReset && w.envs[0].truncated && w.envs[0].finalObservation == nil)
        #expect(w.envs[0].events.contains { $0.kind == .ended && $0.reason == "diverged" })
        let d = w.envs[0].data.pointee
        let nq = Int(w.model.pointer.pointee.nq), nv = Int(w.model.pointer.pointee.nv)
        #expect((0..<nq).allSatisfy { d.qpos[$0].isFinite } && (0..<nv).allSatisfy { d.qvel[$0].isFinite })
        let finite = w.envs[0].observation.allSatisfy { $0.isFinite }
        #expect(finite, "the last finite observation is returned")
        // A same-step caller: the episode starts and the env moves in this very step.
        for env in w.envs { env.events.removeAll() }
        w.step([0], actions: [Double](repeating: 0, count: w.actionSize), autoreset: .sameStep)
        #expect(!w.envs[0].needsReset && w.envs[0].steps == 1)
        #expect(w.envs[0].events.map(\.kind).first == .started)
    }
}

@Suite struct ResetTests {
    /// A reset leaves nothing of the env's history behind: after different pasts, the same seed
    /// and actions give bit-identical trajectories.
    @Test(arguments: ["Scenes/cartpole", "Scenes/object_tracker", "Scenes/tbar_push"])
    func resetForgetsHistory(scene: String) throws {
        func run(_ w: World) -> [UInt64] {
            w.reset([0], seed: 11)
            var out = w.envs[0].observation.map(\.bitPattern)
            for step in 0..<60 {
                let actions = (0..<w.actionSize).map { j in WorldTests.action(env: j, step: step) }
                w.step([0], actions: actions)
                out += (w.envs[0].observation + [w.envs[0].reward]).map(\.bitPattern)
            }
            return out
        }
        let fresh = try WorldTests.world(scene, envs: 1, threads: 1)
        let used = try WorldTests.world(scene, envs: 1, threads: 1)
        for step in 0..<150 {
            let actions = (0..<used.actionSize).map { j in WorldTests.action(env: 7 + j, step: step) }
            used.step([0], actions: actions)
        }
        #expect(run(fresh) == run(used))
    }
}
