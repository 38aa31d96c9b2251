import Foundation

/// Times PPO updates on a synthetic rollout (random observations, actions, rewards and episode ends)
/// of `steps` × `envs` transitions: the learner alone, no simulator. The peer is the same update in
/// torch (Benchmarks/python/ppo_update_bench.py).
public enum UpdateBenchmark {
    /// Seconds per update: the median of `repeats` runs of `updates` updates each.
    public static func run(observationSize: Int, actionSize: Int, configuration: PPOConfiguration, envs: Int,
                           updates: Int, repeats: Int) -> [Double] {
        var times: [Double] = []
        for r in 0..<repeats {
            let learner = PPOLearner(configuration: configuration, observationSize: observationSize, actionSize: actionSize,
                                     envs: envs, seed: UInt64(r + 1))
            var random = TrainRandom(seed: 99)
            let n = configuration.steps * envs
            for k in 0..<(n * observationSize) { learner.observations[k] = Float(random.normal()) }
            for t in 0..<configuration.steps {
                let x = Array(learner.observations[(t * envs * observationSize)..<((t + 1) * envs * observationSize)])
                let (a, logp, v) = learner.act(x)
                for k in 0..<(envs * actionSize) { learner.actions[t * envs * actionSize + k] = a[k] }
                for e in 0..<envs {
                    learner.logProbabilities[t * envs + e] = logp[e]
                    learner.values[t * envs + e] = v[e]
                    learner.rewards[t * envs + e] = Float(random.normal())
                    learner.dones[t * envs + e] = random.uniform() < 0.02 ? 1 : 0
                }
            }
            learner.computeAdvantages(lastValues: [Float](repeating: 0, count: envs))
            let clock = ContinuousClock()
            let start = clock.now
            for u in 0..<updates { _ = learner.update(progress: Double(u) / Double(updates)) }
            times.append((clock.now - start).seconds / Double(updates))
        }
        return times
    }
}
