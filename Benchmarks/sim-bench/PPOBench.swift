import ArgumentParser
import Foundation
import TrainKit

/// One PPO update of sim-train's learner on a synthetic rollout; the peer is the same update in
/// torch on one thread (Benchmarks/python/ppo_update_bench.py, same sizes and settings).
struct PPOBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "Seconds per PPO update (learner only) on a synthetic rollout.")

    @Option(help: "Observation size.") var observations = 4
    @Option(help: "Action size.") var actions = 1
    @Option(help: "Envs.") var envs = 16
    @Option(name: .customLong("rollout-steps"), help: "Steps per env per rollout.") var rolloutSteps = 128
    @Option(help: "Passes over each rollout.") var epochs = 10
    @Option(help: "Minibatches per pass.") var minibatches = 4
    @Option(help: "Hidden widths, comma-separated.") var hidden = "64,64"
    @Option(help: "Updates per run.") var updates = 5
    @Option(help: "Runs; the median is reported.") var repeats = 5

    func run() throws {
        var c = PPOConfiguration()
        c.steps = rolloutSteps
        c.epochs = epochs
        c.minibatches = minibatches
        c.hidden = hidden.split(separator: ",").compactMap { Int($0) }
        let times = UpdateBenchmark.run(observationSize: observations, actionSize: actions, configuration: c, envs: envs,
                                        updates: updates, repeats: repeats)
        let median = times.sorted()[times.count / 2]
        print(String(format: "sim-train PPO update: obs %d, act %d, hidden %@, batch %d x %d epochs in %d minibatches: %.2f ms per update (median of %d; runs %@)",
                     observations, actions, hidden, rolloutSteps * envs, epochs, minibatches, median * 1000, repeats,
                     times.map { String(format: "%.2f", $0 * 1000) }.joined(separator: ", ")))
    }
}
