import CMuJoCo
import Dispatch
import Foundation
import PluginAPI
import RewardLanguage
import Synchronization

/// When an env whose episode ended starts the next one (gymnasium's vector autoreset modes).
package enum Autoreset: Sendable, Equatable {
    /// In the step that ends the episode: the step returns the new episode's first observation and
    /// keeps the last one in `Env.finalObservation` (Stable-Baselines3, Isaac Lab).
    case sameStep
    /// In the env's next step, which ignores its action and returns the first observation with
    /// reward 0 and no termination; the ending step returns the final observation (gymnasium's
    /// default, EnvPool).
    case nextStep
}

/// N environments of one scene: one compiled model shared by all, one MuJoCo data per env, a task
/// plugin, and a worker pool that steps disjoint envs in parallel. Results do not depend on the
/// env count, the env's position in a batch, or the thread count: each env's randomness comes
/// from (seed, env index, episode index) only.
///
/// Owned by the step loop: call it from one thread at a time.
package final class World: @unchecked Sendable {
    // Invariant: used by one thread at a time (the server's step loop, or a step channel's thread
    // holding the loop's exclusive lock); it lends envs to workers inside `step`.
    package let model: MuJoCoModel
    package let view: ModelView
    package let task: any TaskPlugin
    /// The task as it describes itself (checked).
    package let description: TaskDescription
    /// The scene's robot and its motion generator (nil only for worlds built without one, in tests).
    package let robot: RobotController?
    package let configuration: TaskConfiguration
    package let envs: [Env]
    /// Worker threads for a batch (1: step on the calling thread).
    package var threads: Int
    /// Control steps per episode before truncation.
    package let maxSteps: Int
    package let actionLow: [Double]
    package let actionHigh: [Double]
    /// What an action must be (size, finiteness) and how it is bounded (clipped), for every source.
    package let actions: ActionContract
    package let weights: [Double]
    /// Index of the keyframe named "home", or -1.
    package let homeKeyframe: Int32
    /// Keep each ended episode's final state (`Env.finalState`) for rendering: set by the step
    /// loop for batches whose caller asked for pixel observations.
    package var keepsFinalStates = false
    /// Reset randomization ranges in force: the manifest's until `setResetRanges` changes them.
    package private(set) var resetRanges: ResetRanges
    /// The names a reward expression may read, in the order of `Env.rewardValues`: the task's terms
    /// and observations by their own names (a term wins a clash), then `term.<name>`, `obs.<name>`
    /// and `action.<name>` for every one, then `reward` (the task's weighted sum), `success` and
    /// `terminated` (1 or 0; a term or observation of the same name wins: the first of a name is the one read).
    package let rewardVariables: [String]
    /// The task's reward term names.
    package var rewardTermNames: [String] { description.rewardTerms.map(\.name) }

    /// Loads the scene's model and configures its task and robot for `envCount` envs.
    /// `actionTopic(i)` names where env `i`'s actions come from in its rejection reports.
    package init(scene: Scene, taskType: any TaskPlugin.Type, robotType: (any RobotPlugin.Type)?, envCount: Int, seed: UInt64,
                 threads: Int, actionTopic: (Int) -> String = { "/env_\($0)/action" }) throws(SceneError) {
        model = try MuJoCoModel(path: scene.modelPath)
        view = model.view()
        homeKeyframe = mj_name2id(model.pointer, Int32(mjOBJ_KEY.rawValue), "home")
        let manifest = scene.manifest
        guard abs(model.timestep - manifest.physicsDt) <= 1e-12 * max(1, manifest.physicsDt) else {
            throw SceneError(file: scene.manifestPath, place: "physics_dt",
                             problem: "\(manifest.physicsDt) differs from the model's timestep \(model.timestep)")
        }
        configuration = TaskConfiguration(
            scene: manifest.name, envCount: envCount, physicsDt: manifest.physicsDt, decimation: manifest.decimation,
            episodeLength: manifest.episodeLengthS, resetRanges: scene.resetRanges, parameters: manifest.parameters)
        do {
            task = try taskType.init(model: view, configuration: configuration)
        } catch {
            throw SceneError(file: scene.manifestPath, place: "task", problem: "\(manifest.task): \(error)")
        }
        if let robotType {
            let robotConfiguration = RobotConfiguration(scene: manifest.name, envCount: envCount, controlDt: configuration.controlDt,
                                                        parameters: manifest.parameters, options: manifest.robotOptions ?? [:])
            do {
                let plugin = try robotType.init(model: view, configuration: robotConfiguration)
                robot = try RobotController(robot: plugin, model: model, view: view, workspace: scene.workspace,
                                            controlDt: configuration.controlDt,
                                            commandTimeout: manifest.parameters["command_timeout_s"] ?? 0.5)
            } catch {
                throw SceneError(file: scene.manifestPath, place: "robot", problem: "\(manifest.robot): \(error)")
            }
        } else {
            robot = nil
        }
        do {
            description = try TaskDescription(task: task, robot: manifest.robot)
        } catch {
            throw SceneError(file: scene.manifestPath, place: "task", problem: "\(manifest.task): \(error)")
        }
        actionLow = task.actionLow
        usesPoses = task.usesPoses
        actionHigh = task.actionHigh
        actions = ActionContract(low: actionLow, high: actionHigh, names: description.actions.map(\.name), choices: description.actionChoices)
        weights = task.rewardTerms.map(\.weight)
        rewardVariables = RewardExpression.variables(terms: description.rewardTerms.map(\.name), observations: description.observations.map(\.name),
                                                     actions: description.actions.map(\.name))
        maxSteps = max(1, Int((manifest.episodeLengthS / configuration.controlDt).rounded()))
        self.threads = max(1, threads)
        resetRanges = ResetRanges(configuration.resetRanges)
        let (obs, act, terms, m) = (task.observationSize, task.actionSize, task.rewardTerms.count, model)
        envs = (0..<envCount).map {
            Env(index: $0, model: m, observationSize: obs, actionSize: act, termCount: terms, seed: seed, actionTopic: actionTopic($0))
        }
        if let robot { for env in envs { env.motion = robot.makeState() } }
        setResetRanges(resetRanges)
        for env in envs { startEpisode(env, reason: nil) }
        for env in envs { env.events.removeAll() }
    }

    /// The task reads poses after a step, so the world computes them (else the publisher does,
    /// for the envs it publishes poses of).
    package let usesPoses: Bool

    package var observationSize: Int { task.observationSize }
    package var actionSize: Int { task.actionSize }

    /// Replaces the reset ranges in force; every later episode start (reset, auto-reset) sees them
    /// through `EnvView.range(_:default:)`. Call it between batches (step loop thread).
    package func setResetRanges(_ ranges: ResetRanges) {
        resetRanges = ranges
        for env in envs {
            // A fresh dictionary per env: its reference count is then touched by one worker only.
            env.resetRanges = ResetRanges(Dictionary(uniqueKeysWithValues: ranges.ranges.map { ($0.key, $0.value) }))
        }
    }

    // MARK: Reset

    /// Resets `ids`; with a seed, each env's run restarts from (seed, seed index) at episode 0 or,
    /// given `episodes` (one per id), that episode; the seed index is the env's index or, given
    /// `seedIndices` (one per id), that.
    package func reset(_ ids: [Int], seed: UInt64?, seedIndices: [Int]? = nil, episodes: [UInt64]? = nil) {
        for (k, i) in ids.enumerated() {
            let env = envs[i]
            if let seed {
                env.runSeed = seed
                env.seedIndex = seedIndices?[k] ?? i
                env.episode = episodes?[k] ?? 0
            } else {
                env.episode &+= 1
            }
            // An env waiting for its next-step reset has reported its episode's end already.
            if env.needsReset { env.needsReset = false } else { endEpisode(env, reason: "reset") }
            startEpisode(env, reason: nil)
        }
    }

    private func startEpisode(_ env: Env, reason: String?) {
        // Episodes start from the model's keyframe "home" when it has one, else from qpos0.
        env.episodeStarts &+= 1
        robosim_mj_reset(model.pointer, env.data, homeKeyframe)
        var random = RandomSource(seed: env.runSeed, env: env.seedIndex, episode: env.episode)
        env.episodeSeed = RandomSource.episodeSeed(seed: env.runSeed, env: env.seedIndex, episode: env.episode)
        task.reset(env.view(model), random: &random)
        mj_forward(model.pointer, env.data)
        if let robot, env.motion != nil {
            robot.reset(&env.motion!, qpos: env.data.pointee.qpos)
            env.pendingCommand = nil
            if env.source == .robot { env.source = .none }
        }
        env.data.pointee.time = 0
        env.steps = 0
        env.episodeReturn = 0
        env.observation.withUnsafeMutableBufferPointer { task.observe(env.view(model), into: $0) }
        env.events.append(event(env, kind: .started, reason: ""))
    }

    private func endEpisode(_ env: Env, reason: String) {
        guard env.steps > 0 || reason != "reset" else { return }
        env.events.append(event(env, kind: .ended, reason: reason))
    }

    private func event(_ env: Env, kind: EpisodeEvent.Kind, reason: String) -> EpisodeEvent {
        EpisodeEvent(kind: kind, env: env.index, episode: env.episode, seed: env.episodeSeed, success: env.success,
                     episodeReturn: env.episodeReturn, steps: env.steps, reason: reason)
    }

    // MARK: Step

    /// One control step for each env in `ids` with its action (env-major, `actionSize` each; the
    /// caller has checked sizes and finiteness). Envs whose episode ends start the next one as
    /// `autoreset` says; with `.sameStep` their final observation is kept in `finalObservation`.
    /// An env waiting for a next-step reset starts its next episode instead of moving.
    /// With `reward`, each env's reward is that expression over `rewardVariables` instead of the
    /// task's weighted sum.
    package func step(_ ids: [Int], actions: [Double], autoreset: Autoreset = .sameStep, reward: RewardExpression? = nil) {
        let n = ids.count
        let workers = min(threads, n)
        if workers <= 1 {
            for k in 0..<n { stepOne(envs[ids[k]], actions: actions, offset: k * actionSize, autoreset: autoreset, reward: reward) }
            return
        }
        // Envs are claimed one at a time from a shared counter: a worker that wakes late takes what
        // is left instead of holding up the batch with a fixed share (results do not depend on who
        // steps which env).
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                guard k < n else { break }
                stepOne(envs[ids[k]], actions: actions, offset: k * actionSize, autoreset: autoreset, reward: reward)
            }
        }
    }

    /// Pre-step, after the task's: a new robot command (the task's, made from its action, or one
    /// from a topic) goes through the controller, and the setpoint moves one control step.
    private func driveRobot(_ robot: RobotController, _ env: Env, _ view: EnvView) {
        var fromTask = false
        if env.source == .action {
            if let command = env.action.withUnsafeBufferPointer({ task.robotCommand(view, action: $0) }) {
                fromTask = true
                if let why = robot.accept(command, topic: env.actionTopic, state: &env.motion!, data: env.data) {
                    env.rejections.append((env.actionTopic, why))
                }
            }
        } else if let pending = env.pendingCommand {
            env.pendingCommand = nil
            if let stamp = pending.stamp, stamp < env.episodeStartTime - 1e-9 {
                env.rejections.append((pending.topic, String(format: "stale: stamped at %.3f s, before this episode started at %.3f s (sim time)",
                                                             stamp, env.episodeStartTime)))
            } else if let why = robot.accept(pending.command, topic: pending.topic, state: &env.motion!, data: env.data) {
                env.rejections.append((pending.topic, why))
            }
        }
        // Under the task's action the task's controls stand, unless it commands the robot.
        guard env.source != .action || fromTask else { return }
        if let why = robot.advance(&env.motion!, env: view, data: env.data) {
            env.rejections.append((env.motion!.topic, why))
        }
    }

    private func keepFinalState(_ env: Env) {
        guard keepsFinalStates else { return }
        env.finalState = StateSnapshot(env: env.index, epoch: env.episodeStarts, stamp: env.data.pointee.time, model: model.pointer, data: env.data)
    }

    private func stepOne(_ env: Env, actions: [Double], offset: Int, autoreset: Autoreset, reward expression: RewardExpression?) {
        env.finalObservation = nil
        env.finalState = nil
        env.success = false
        env.measured = false
        if env.needsReset {
            // The episode ended in the env's last step under next-step autoreset: it starts now.
            env.needsReset = false
            env.episode &+= 1
            startEpisode(env, reason: nil)
            if autoreset == .nextStep {
                env.reward = 0
                env.terminated = false
                env.truncated = false
                return
            }
            // A same-step caller (another client, a changed mode) gets a real step of the new episode.
        }
        for j in 0..<actionSize { env.action[j] = self.actions.clipped(actions[offset + j], j) }
        let view = env.view(model)
        env.action.withUnsafeBufferPointer { task.preStep(view, action: $0) }
        if let robot { driveRobot(robot, env, view) }
        let rc = env.error.withUnsafeMutableBufferPointer {
            robosim_mj_step_guarded(model.pointer, env.data, Int32(configuration.decimation), $0.baseAddress, Int32($0.count))
        }
        env.steps += 1
        if rc != 0 || env.diverged(model) {
            // The observation stays the last finite one.
            env.reward = 0
            env.terminated = false
            env.truncated = true
            endEpisode(env, reason: "diverged")
            finishEpisode(env, autoreset, diverged: true)
            return
        }
        if usesPoses { mj_kinematics(model.pointer, env.data) }
        let status = env.observation.withUnsafeMutableBufferPointer { obs in
            env.terms.withUnsafeMutableBufferPointer { terms in task.postStep(env.view(model), observation: obs, terms: terms) }
        }
        var reward = 0.0
        for (w, t) in zip(weights, env.terms) { reward += w * t }
        if let expression { reward = evaluate(expression, env, taskReward: reward, status: status) }
        env.reward = reward
        env.measured = true
        env.episodeReturn += reward
        env.terminated = status.terminated
        env.success = status.success
        env.truncated = !status.terminated && env.steps >= maxSteps
        if env.terminated || env.truncated {
            endEpisode(env, reason: env.terminated ? "terminated" : "truncated")
            finishEpisode(env, autoreset, diverged: false)
        }
    }

    /// `expression` over this step's values, in `rewardVariables` order.
    private func evaluate(_ expression: RewardExpression, _ env: Env, taskReward: Double, status: StepStatus) -> Double {
        if env.rewardValues.count != rewardVariables.count { env.rewardValues = [Double](repeating: 0, count: rewardVariables.count) }
        return env.rewardValues.withUnsafeMutableBufferPointer { v in
            var k = 0
            func put(_ x: Double) { v[k] = x; k += 1 }
            for t in env.terms { put(t) }
            for o in env.observation { put(o) }
            for t in env.terms { put(t) }
            for o in env.observation { put(o) }
            for a in env.action { put(a) }
            put(taskReward)
            put(status.success ? 1 : 0)
            put(status.terminated ? 1 : 0)
            return expression.evaluate(UnsafeBufferPointer(v))
        }
    }

    /// After an episode ended: the next one starts now (keeping the final observation and, for
    /// pixels, state), or at the env's next step.
    private func finishEpisode(_ env: Env, _ autoreset: Autoreset, diverged: Bool) {
        guard autoreset == .sameStep else {
            env.needsReset = true
            if diverged {
                // Diverged: the data holds NaN or a state MuJoCo gave up on. Keep the final image
                // (pixels), then hold the model's initial state until the next step starts the
                // episode, so that no topic, render or unguarded MuJoCo call sees the broken one.
                keepFinalState(env)
                robosim_mj_reset(model.pointer, env.data, homeKeyframe)
                mj_forward(model.pointer, env.data)
            }
            return
        }
        env.finalObservation = env.observation
        keepFinalState(env)
        env.episode &+= 1
        startEpisode(env, reason: nil)
    }
}
