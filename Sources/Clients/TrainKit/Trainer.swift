import ClientKit
import Foundation
import Messaging

/// What a training run does.
public struct TrainOptions: Sendable {
    public var ppo = PPOConfiguration()
    /// Env steps (all envs together) to train for.
    public var totalSteps = 200_000
    public var seed: UInt64 = 1
    /// Stop once this share of the last 100 finished episodes succeeded (nil: run all steps).
    public var stopAtSuccess: Double?
    /// A reward expression for the lease (nil: the task's reward).
    public var reward: String?
    /// Where checkpoints and logs go.
    public var output: URL
    public var scene = ""
    /// Learn from pixels: the observations are `camera`'s images (nil: the scene's first rgb
    /// observation camera), rendered every step, HWC in [0, 1], through a CNN policy.
    public var pixels = false
    public var camera: String?

    public init(output: URL) { self.output = output }
}

/// One line of `metrics.csv` (deterministic: no wall-clock values).
public struct UpdateRecord: Sendable {
    public var update = 0, envSteps = 0, episodes = 0
    public var meanReturn = Double.nan, meanLength = Double.nan, successRate = Double.nan
    public var statistics = UpdateStatistics()

    static let header = "update,env_steps,episodes,mean_return,mean_length,success_rate,policy_loss,value_loss,entropy,approx_kl,clip_fraction,explained_variance,learning_rate"

    var csv: String {
        let s = statistics
        func f(_ x: Double) -> String { x.isNaN ? "" : String(format: "%.9g", x) }
        return "\(update),\(envSteps),\(episodes),\(f(meanReturn)),\(f(meanLength)),\(f(successRate)),\(f(s.policyLoss)),\(f(s.valueLoss)),"
            + "\(f(s.entropy)),\(f(s.approxKL)),\(f(s.clipFraction)),\(f(s.explainedVariance)),\(f(s.learningRate))"
    }
}

/// How a run ended.
public struct TrainSummary: Sendable {
    public var envSteps = 0
    public var updates = 0
    public var wallSeconds = 0.0
    public var envSeconds = 0.0
    public var learnSeconds = 0.0
    /// The server's share of `envSeconds` (step channel only; 0 over sockets).
    public var simSeconds = 0.0
    public var successRate = Double.nan
    public var meanReturn = Double.nan
    public var checkpoint: URL
    /// Per update: the env steps so far, the success rate of the last 100 episodes, and how the
    /// reward and the task's terms behaved over the update's rollout (`/sim/reward_statistics`).
    public var rewardHistory: [RewardPoint] = []
    /// Episodes in flight truncated by server restarts (reason "server restarted").
    public var truncatedByRestarts = 0
}

/// How the reward and its terms behaved over one update's rollout.
public struct RewardPoint: Sendable {
    public var envSteps: Int
    public var successRate: Double
    public var statistics: VectorEnv.RewardStatistics
}

/// PPO on leased envs of one or several servers (`VectorEnvGroup`): rollouts through the servers
/// (step channels on one machine), updates on this thread. Writes `metrics.csv`, `timing.csv`,
/// `events.log` and `checkpoint.safetensors` into the output directory and reports each update
/// through `log`.
///
/// A server lost mid-rollout is logged; the rollout starts over on the envs left (the episodes in
/// flight on the lost server are gone), and the server's envs join again, from a fresh seeded
/// reset, at the first update after it answers.
///
/// A server that restarts within the reconnect timeout is taken back by the vector env: its envs'
/// episodes in flight come back truncated (reason "server restarted", bootstrapped from their last
/// observation like a time limit), are left out of the episode statistics, and are reported in the
/// log and `events.log`; training goes on.
public final class Trainer {
    let env: VectorEnvGroup
    let options: TrainOptions
    let log: (String) -> Void

    public init(env: VectorEnvGroup, options: TrainOptions, log: @escaping (String) -> Void) {
        self.env = env
        self.options = options
        self.log = log
    }

    public func run() throws -> TrainSummary {
        let c = options.effectivePPO
        let pixels = options.pixels ? try PixelObservations(env: env, camera: options.camera) : nil
        var n = env.count
        let (o, a) = (pixels?.input.size ?? env.observationSize, env.actionSize)
        if let problem = c.problem { throw TrainError("PPO settings: \(problem)") }
        guard c.minibatches <= c.steps * n else { throw TrainError("minibatches must be at most steps x envs (\(c.steps * n))") }
        let floats = c.steps.multipliedReportingOverflow(by: n * (o + a + 8))
        guard !floats.overflow, floats.partialValue <= 1 << 27 else {
            throw TrainError("a rollout of \(c.steps) steps x \(n) envs would hold \(floats.partialValue) values; the limit is \(1 << 27) (512 MiB): fewer steps per rollout")
        }
        // Only steps refresh the lease: keep it alive while an update runs longer than its time to live.
        let keeper = LeaseKeeper { [env] in env.renewLeases() }
        defer { keeper.stop() }
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        let rewardText = options.reward ?? ""
        if let reward = options.reward { _ = try env.setReward(reward) }
        let learner = PPOLearner(configuration: c, observationSize: o, actionSize: a, choices: env.actionChoices, image: pixels?.input, envs: n,
                                 seed: options.seed)
        var obsNorm = RunningMeanVariance(size: o)
        var returnNorm = RunningMeanVariance(size: 1)
        var discounted = [Double](repeating: 0, count: n)
        var episodeReturn = [Double](repeating: 0, count: n), episodeLength = [Int](repeating: 0, count: n)
        var recent: [(ret: Double, length: Int, success: Bool)] = []
        var episodes = 0

        var raw = try pixels?.reset(env, seed: options.seed) ?? env.reset(seed: options.seed).observations
        if c.normalizeObservations { obsNorm.update(raw, rows: n) }
        func normalized(_ x: [Double], rows: Int) -> [Float] { c.normalizeObservations ? obsNorm.normalize(x, rows: rows) : x.map(Float.init) }

        let metricsURL = options.output.appendingPathComponent("metrics.csv")
        let timingURL = options.output.appendingPathComponent("timing.csv")
        let board = try TensorBoardWriter(directory: options.output.appendingPathComponent("tensorboard"))
        // Appended after every update: an interrupted run keeps what it logged.
        let metrics = try AppendFile(metricsURL, header: UpdateRecord.header)
        let timing = try AppendFile(timingURL, header: "update,env_steps,wall_s,env_s,sim_s,transport_s,learn_s,steps_per_s")
        let events = try AppendFile(options.output.appendingPathComponent("events.log"), header: "# servers lost and taken back")
        var globals = env.globalIndices
        var envSteps = 0
        let updates = max(1, options.totalSteps / (c.steps * n))
        // The env steps the run takes: with servers lost, more (smaller) updates reach them.
        let plannedSteps = updates * c.steps * n
        let clock = ContinuousClock()
        let started = clock.now
        var summary = TrainSummary(checkpoint: options.output.appendingPathComponent("checkpoint.safetensors"))
        var envTime = Duration.zero, learnTime = Duration.zero
        // The server's own time per step (step channel only): simulation; the rest of env time is transport.
        var simSeconds = 0.0
        /// Per-env state moved from the order `globals` to the group's current one; envs new to it
        /// start from `fresh` observations (rows by global index).
        func rejoin(fresh: [Int: ArraySlice<Double>]) {
            let after = env.globalIndices
            let old = Dictionary(uniqueKeysWithValues: globals.enumerated().map { ($1, $0) })
            func moved<T>(_ x: [T], width: Int, fill: T, fresh: [Int: ArraySlice<T>] = [:]) -> [T] {
                var out: [T] = []
                out.reserveCapacity(after.count * width)
                for g in after {
                    if let f = fresh[g] { out += f } else if let i = old[g] { out += x[(i * width)..<((i + 1) * width)] } else {
                        out += [T](repeating: fill, count: width)
                    }
                }
                return out
            }
            raw = moved(raw, width: o, fill: 0, fresh: fresh)
            discounted = moved(discounted, width: 1, fill: 0)
            episodeReturn = moved(episodeReturn, width: 1, fill: 0)
            episodeLength = moved(episodeLength, width: 1, fill: 0)
            globals = after
            n = after.count
            learner.resize(envs: n)
        }
        func event(_ text: String, update: Int) throws {
            let line = "update \(update), env steps \(envSteps): \(text)"
            log(line)
            try events.append(line)
        }

        var update = 0
        while envSteps < plannedSteps {
            update += 1
            if env.globalIndices != globals {
                // A server was lost outside a step (its envs had not moved): drop its rows.
                let gone = Set(globals).subtracting(env.globalIndices)
                let names = env.members.filter { gone.contains($0.offset) }.map(\.address)
                rejoin(fresh: [:])
                try event("server \(names.joined(separator: ", ")) lost; \(n) envs", update: update)
                guard n > 0 else { throw TrainError("every server is lost") }
            }
            // Lost servers that answer again join from a seeded reset (the seed moves with the update).
            if !env.lost.isEmpty, let back = env.recover(seed: options.seed &+ UInt64(update), render: pixels != nil,
                                                          cameras: pixels.map { [$0.input.camera] } ?? []) {
                let rows = try pixels?.pixels(back.images, count: back.globalIndices.count) ?? back.observations
                var fresh: [Int: ArraySlice<Double>] = [:]
                for (k, g) in back.globalIndices.enumerated() { fresh[g] = rows[(k * o)..<((k + 1) * o)] }
                rejoin(fresh: fresh)
                try event("server \(back.addresses.joined(separator: ", ")) is back: \(back.globalIndices.count) envs joined; \(n) envs", update: update)
            }
            let rolloutStart = clock.now
            var actingTime = Duration.zero
            var t = 0
            while t < c.steps {
                defer { t += 1 }
                let x = normalized(raw, rows: n)
                let actStart = clock.now
                let (acts, logp, values) = learner.act(x)
                actingTime += clock.now - actStart
                for k in 0..<(n * o) { learner.observations[t * n * o + k] = x[k] }
                for k in 0..<(n * a) { learner.actions[t * n * a + k] = acts[k] }
                for e in 0..<n {
                    learner.logProbabilities[t * n + e] = logp[e]
                    learner.values[t * n + e] = values[e]
                }
                let r: VectorEnv.StepResult
                do {
                    r = try pixels?.step(env, actions: acts.map(Double.init)) ?? env.step(actions: acts.map(Double.init))
                } catch let lost as VectorEnvGroup.MembersLost {
                    // The survivors did step: go on from their new observations, with their
                    // episodes that ended in it dropped like those in flight on the lost servers.
                    guard let survivors = lost.survivors else { throw lost }
                    let rows = try pixels.map { p in try p.pixels(survivors.images, count: survivors.rewards.count) } ?? survivors.observations
                    var fresh: [Int: ArraySlice<Double>] = [:]
                    for (k, g) in env.globalIndices.enumerated() { fresh[g] = rows[(k * o)..<((k + 1) * o)] }
                    let ended = Set(env.globalIndices.enumerated().filter { survivors.terminated[$0.offset] || survivors.truncated[$0.offset] }.map(\.element))
                    rejoin(fresh: fresh)
                    for (k, g) in globals.enumerated() where ended.contains(g) {
                        (episodeReturn[k], episodeLength[k], discounted[k]) = (0, 0, 0)
                    }
                    try event("\(lost); the rollout starts over with \(n) envs", update: update)
                    guard n > 0 else { throw TrainError("every server is lost") }
                    t = -1
                    continue
                }
                simSeconds += env.lastServerSeconds ?? 0
                let restarted = Set(r.restartedPositions)
                if !restarted.isEmpty {
                    let cut = r.restartedPositions.filter { episodeLength[$0] > 0 }.count
                    try event("server \(Set(r.restartedServers).sorted().joined(separator: ", ")) restarted: \(cut) episodes in flight truncated (\(VectorEnv.restartReason)), \(r.restartedPositions.count) envs reset; reconnects \(env.reconnects), episodes lost \(env.episodesLost)", update: update)
                    summary.truncatedByRestarts += cut
                }
                raw = r.observations
                if c.normalizeObservations { obsNorm.update(raw, rows: n) }
                // Time limits bootstrap from the value of the state the episode was cut in.
                var bootstrap = [Double](repeating: 0, count: n)
                let truncated = r.finalPositions.filter { r.truncated[$0] && !r.terminated[$0] }
                if !truncated.isEmpty {
                    let finals = truncated.flatMap { r.finalObservations[$0]! }
                    let v = learner.policy.values(normalized(finals, rows: truncated.count), batch: truncated.count)
                    for (k, e) in truncated.enumerated() { bootstrap[e] = Double(c.gamma * v[k]) }
                }
                if c.normalizeRewards {
                    // VecNormalize: scale by the running deviation of the discounted return.
                    for e in 0..<n { discounted[e] = discounted[e] * Double(c.gamma) + r.rewards[e] }
                    returnNorm.update(discounted, rows: n)
                }
                let scale = c.normalizeRewards ? 1 / (returnNorm.variance[0] + 1e-8).squareRoot() : 1
                for e in 0..<n {
                    let reward = r.rewards[e]
                    episodeReturn[e] += reward
                    episodeLength[e] += 1
                    let scaled = c.normalizeRewards ? min(max(reward * scale, -10), 10) : reward
                    let done = r.terminated[e] || r.truncated[e]
                    learner.rewards[t * n + e] = Float(scaled + bootstrap[e])
                    learner.dones[t * n + e] = done ? 1 : 0
                    if done {
                        // An episode cut by a server restart is no episode of the task.
                        if !restarted.contains(e) {
                            recent.append((episodeReturn[e], episodeLength[e], r.success[e]))
                            if recent.count > 100 { recent.removeFirst() }
                            episodes += 1
                        }
                        episodeReturn[e] = 0
                        episodeLength[e] = 0
                        discounted[e] = 0
                    }
                }
            }
            envSteps += c.steps * n
            let lastValues = learner.policy.values(normalized(raw, rows: n), batch: n)
            envTime += clock.now - rolloutStart - actingTime
            let learnStart = clock.now
            learner.computeAdvantages(lastValues: lastValues)
            let stats = learner.update(progress: Double(envSteps - c.steps * n) / Double(plannedSteps))
            learnTime += clock.now - learnStart + actingTime

            var record = UpdateRecord()
            record.update = update
            record.envSteps = envSteps
            record.episodes = episodes
            record.statistics = stats
            if !recent.isEmpty {
                record.meanReturn = recent.reduce(0) { $0 + $1.ret } / Double(recent.count)
                record.meanLength = Double(recent.reduce(0) { $0 + $1.length }) / Double(recent.count)
                record.successRate = Double(recent.filter(\.success).count) / Double(recent.count)
            }
            try metrics.append(record.csv)
            // How the reward and its terms behaved (the reward search's feedback; TensorBoard).
            if case let stats = env.rewardStatistics(), stats.steps > 0 {
                summary.rewardHistory.append(RewardPoint(envSteps: envSteps, successRate: record.successRate, statistics: stats))
                try board.scalars(zip(stats.names, stats.mean).map { ("reward_terms/\($0)", $1) }, step: envSteps)
            }
            let wall = (clock.now - started).seconds
            let sim = env.transport == .shm ? String(format: "%.3f", simSeconds) : ""
            let transport = env.transport == .shm ? String(format: "%.3f", max(0, envTime.seconds - simSeconds)) : ""
            try timing.append("\(update),\(record.envSteps),\(String(format: "%.3f", wall)),\(String(format: "%.3f", envTime.seconds)),\(sim),\(transport),"
                + "\(String(format: "%.3f", learnTime.seconds)),\(String(format: "%.0f", Double(record.envSteps) / max(wall, 1e-9)))")
            let st = record.statistics
            try board.scalars([
                ("rollout/ep_rew_mean", record.meanReturn), ("rollout/ep_len_mean", record.meanLength), ("rollout/success_rate", record.successRate),
                ("train/policy_loss", st.policyLoss), ("train/value_loss", st.valueLoss), ("train/entropy", st.entropy),
                ("train/approx_kl", st.approxKL), ("train/clip_fraction", st.clipFraction), ("train/explained_variance", st.explainedVariance),
                ("train/learning_rate", st.learningRate), ("time/steps_per_s", Double(record.envSteps) / max(wall, 1e-9)),
                ("time/env_s", envTime.seconds), ("time/learn_s", learnTime.seconds),
                ("time/sim_s", env.transport == .shm ? simSeconds : .nan),
                ("time/transport_s", env.transport == .shm ? max(0, envTime.seconds - simSeconds) : .nan),
            ], step: record.envSteps)
            log(String(format: "update %d/%d  steps %d  %.0f steps/s  return %.2f  success %.0f%%  episodes %d  (env %.1f s%@, learn %.1f s)",
                       update, max(updates, update + (plannedSteps - envSteps + c.steps * n - 1) / (c.steps * n)), record.envSteps, Double(record.envSteps) / max(wall, 1e-9), record.meanReturn,
                       100 * (record.successRate.isNaN ? 0 : record.successRate), episodes, envTime.seconds,
                       env.transport == .shm ? String(format: ": sim %.1f, transport %.1f", simSeconds, max(0, envTime.seconds - simSeconds)) : "",
                       learnTime.seconds))
            summary.envSteps = record.envSteps
            summary.updates = update
            summary.successRate = record.successRate
            summary.meanReturn = record.meanReturn
            if update % 25 == 0 { try checkpoint().write(to: summary.checkpoint) }  // a run cut short keeps a recent policy
            if let target = options.stopAtSuccess, recent.count >= 100, record.successRate >= target { break }
        }
        summary.wallSeconds = (clock.now - started).seconds
        summary.envSeconds = envTime.seconds
        summary.learnSeconds = learnTime.seconds
        summary.simSeconds = simSeconds
        try checkpoint().write(to: summary.checkpoint)
        return summary

        func checkpoint() -> Checkpoint {
            let d = env.description
            return Checkpoint(
                metadata: .init(task: d.task.name, scene: options.scene.isEmpty ? d.scene : options.scene, observationNames: pixels == nil ? env.observationNames : [],
                                actionNames: env.actionNames, actionLow: env.actionLow, actionHigh: env.actionHigh, actionChoices: env.actionChoices,
                                hidden: c.hidden, reward: rewardText, envSteps: summary.envSteps, seed: options.seed, configuration: c,
                                versions: ["robosim": d.version, "trainer": "sim-train PPO 1"], image: pixels?.input),
                policy: learner.policy, observationNormalization: c.normalizeObservations ? obsNorm : nil)
        }
    }
}

/// An evaluation: episodes of a checkpoint's mean actions on held-out seeds.
public struct EvaluationReport: Codable, Sendable {
    public struct Episode: Codable, Sendable {
        public var index: Int, env: Int, ret: Double, length: Int, success: Bool
        enum CodingKeys: String, CodingKey { case index, env, ret = "return", length, success }
    }
    public var episodes: [Episode]
    public var seed: UInt64
    public var meanReturn: Double
    /// Half-width of the 95% confidence interval of the mean return (normal approximation).
    public var returnInterval95: Double
    public var successRate: Double
    /// Wilson 95% interval of the success rate.
    public var successInterval95: [Double]
}

public enum Evaluator {
    /// A video of one scene camera over the first episodes of the first env.
    public struct Video: Sendable {
        public var url: URL
        /// A camera of the scene with rgb (nil: the first one).
        public var camera: String?
        public var episodes = 2
        public var codec = VideoEncoder.Codec.h264
        public init(url: URL, camera: String? = nil, episodes: Int = 2) {
            self.url = url
            self.camera = camera
            self.episodes = episodes
        }
    }

    /// Runs `episodes` episodes with the checkpoint's actions, every env reset from `seed` first:
    /// env e contributes its first (episodes + e) / n episodes (Stable-Baselines3's
    /// `evaluate_policy` quotas), so short episodes are not over-represented. With `video`, records
    /// the first env's camera over its first episodes (rendered each control step, encoded at the
    /// control rate).
    public static func run(_ checkpoint: Checkpoint, env: some VectorEnvironment, episodes: Int, seed: UInt64, video: Video? = nil) throws -> EvaluationReport {
        try run(policy: .checkpoint(checkpoint), env: env, episodes: episodes, seed: seed, video: video)
    }

    /// The same with a checkpoint's policy (a pixel policy's camera rendered every step) or random actions.
    public static func run(policy: EvaluationPolicy, env: some VectorEnvironment, episodes: Int, seed: UInt64, video: Video? = nil) throws -> EvaluationReport {
        guard episodes >= 1 else { throw TrainError("episodes must be >= 1") }
        let policy = try policy.bind(to: env, seed: seed)
        let n = env.count
        var camera: Robosim_CameraDescription?
        if let video {
            let rgb = env.description.cameras.filter(\.rgb)
            camera = video.camera.map { name in rgb.first { $0.name == name } } ?? rgb.first
            guard camera != nil else {
                throw TrainError("--video: the scene has no rgb camera\(video.camera.map { " named '\($0)'" } ?? "") (cameras: \(env.description.cameras.map(\.name).joined(separator: ", ")))")
            }
            guard env.description.renderBackend != "none" else { throw TrainError("--video: the server renders nothing (render backend none)") }
        }
        var frames: [[UInt8]] = []
        var filmed = 0
        func film() throws {
            guard let camera, filmed < video!.episodes else { return }
            let images = try env.render(positions: [0], cameras: [camera.name])
            guard let image = images.first, image.encoding == "rgb8" else { throw TrainError("--video: no rgb8 image of \(camera.name)") }
            frames.append([UInt8](image.data))
        }
        var raw = try policy.pixels?.reset(env, seed: seed) ?? env.reset(seed: seed, render: false, cameras: []).observations
        try film()
        var ret = [Double](repeating: 0, count: n), length = [Int](repeating: 0, count: n)
        var out: [EvaluationReport.Episode] = []
        let quota = (0..<n).map { (episodes + $0) / n }
        var taken = [Int](repeating: 0, count: n)
        var steps = 0
        while out.count < episodes || (camera != nil && filmed < video!.episodes) {
            let actions = policy.actions(raw, n)
            let r = try policy.pixels?.step(env, actions: actions) ?? env.step(actions: actions, render: false, cameras: [])
            if r.terminated[0] || r.truncated[0] { filmed += 1 }
            try film()
            steps += 1
            guard steps < 10_000_000 / max(1, n) else { throw TrainError("no episode ended in \(steps) steps") }
            raw = r.observations
            // Envs of a restarted server start their episode in flight again: what they did is dropped.
            for e in r.restartedPositions where e < n {
                ret[e] = 0
                length[e] = 0
            }
            for e in 0..<n where !r.restartedPositions.contains(e) {
                ret[e] += r.rewards[e]
                length[e] += 1
                if r.terminated[e] || r.truncated[e] {
                    if taken[e] < quota[e] {
                        out.append(.init(index: out.count, env: e, ret: ret[e], length: length[e], success: r.success[e]))
                        taken[e] += 1
                    }
                    ret[e] = 0
                    length[e] = 0
                }
            }
        }
        if let video, let camera {
            let d = env.description
            try VideoEncoder(codec: video.codec).encode(frames, width: Int(camera.width), height: Int(camera.height),
                                                        fps: 1 / (d.physicsDt * Double(d.decimation)), to: video.url)
        }
        let m = Double(out.count)
        let mean = out.reduce(0) { $0 + $1.ret } / m
        let variance = out.count > 1 ? out.reduce(0) { $0 + ($1.ret - mean) * ($1.ret - mean) } / (m - 1) : 0
        let p = Double(out.filter(\.success).count) / m
        let z = 1.959964
        let center = (p + z * z / (2 * m)) / (1 + z * z / m)
        let half = z * (p * (1 - p) / m + z * z / (4 * m * m)).squareRoot() / (1 + z * z / m)
        return EvaluationReport(episodes: out, seed: seed, meanReturn: mean, returnInterval95: z * (variance / m).squareRoot(),
                                successRate: p, successInterval95: [max(0, center - half), min(1, center + half)])
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}

/// Renews leases (`renew`, thread-safe) every 10 s from a thread of its own until stopped.
final class LeaseKeeper: @unchecked Sendable {
    // Invariant: `stopped` is the only shared state (a semaphore); `renew` is thread-safe.
    private let stopped = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(renew: @escaping @Sendable () -> Void) {
        let thread = Thread { [stopped, done] in
            while stopped.wait(timeout: .now() + 10) == .timedOut { renew() }
            done.signal()
        }
        thread.name = "sim-train.lease"
        thread.start()
    }

    func stop() {
        stopped.signal()
        done.wait()
    }
}

/// A text file that grows by whole lines, each flushed as it is written.
final class AppendFile: @unchecked Sendable {
    // Invariant: `handle` is written under `lock` only.
    private let handle: FileHandle
    private let lock = NSLock()

    /// A new file holding `header` as its first line (none: empty).
    init(_ url: URL, header: String?) throws {
        let first = header.map { Data(($0 + "\n").utf8) } ?? Data()
        guard FileManager.default.createFile(atPath: url.path, contents: first) else {
            throw TrainError("cannot create \(url.path)")
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Appends one line; thread-safe.
    func append(_ line: String) throws { try lock.withLock { try handle.write(contentsOf: Data((line + "\n").utf8)) } }
}
