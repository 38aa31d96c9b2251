import CMuJoCo
import PluginAPI

/// One environment: its MuJoCo data and episode bookkeeping. Used by one thread at a time (the
/// step loop, or the worker it hands the env to for one batch).
package final class Env: @unchecked Sendable {
    // Invariant: accessed by one thread at a time; the step loop's batches hand disjoint envs to workers.
    package let index: Int
    package let data: UnsafeMutablePointer<mjData>
    /// Seed of the current run of episodes (the server's `--seed`, or the last `/sim/reset` seed).
    package var runSeed: UInt64
    /// The env index the run's seed stream uses: its own index, or the one the last seeded reset
    /// gave (a client's global index across servers).
    package var seedIndex: Int
    /// Episode index within the run, and the seed reported for it.
    package var episode: UInt64 = 0
    /// Episodes started so far (resets and auto-resets): camera frames of an earlier count are stale.
    package var episodeStarts: UInt64 = 0
    /// The state an episode ended in, kept before the auto-reset when `World.keepsFinalStates`
    /// (pixel observations of final states).
    package var finalState: StateSnapshot?
    package var episodeSeed: UInt64 = 0
    package var steps = 0
    package var episodeReturn = 0.0
    package var observation: [Double]
    package var terms: [Double]
    /// The clipped action of the current step, and MuJoCo's error text (preallocated: no
    /// allocation per step).
    package var action: [Double]
    package var error = [CChar](repeating: 0, count: 256)
    package var reward = 0.0
    /// The last step moved the env and its terms and reward are that move's (not a step that only
    /// started the next episode, nor one that diverged).
    package var measured = false
    package var terminated = false
    package var truncated = false
    package var success = false
    /// Set when the last step ended the episode and the env auto-reset.
    package var finalObservation: [Double]?
    /// The last step ended the episode under `Autoreset.nextStep`: the env holds its final state,
    /// and its next step starts the next episode instead of moving.
    package var needsReset = false
    /// Scratch for a reward expression's inputs (`World.rewardVariables`), filled per step.
    package var rewardValues: [Double] = []
    /// Episode events produced by the last batch, published by the step loop.
    package var events: [EpisodeEvent] = []
    /// The robot's motion generator state (nil without a robot).
    package var motion: MotionState?
    /// What drives the robot, and a robot command from a topic not yet taken by the motion generator.
    package internal(set) var source = ControlSource.none
    package internal(set) var pendingCommand: PendingCommand?
    /// Robot commands refused or stopped during the last batch (topic, reason), counted by the step loop.
    package var rejections: [(topic: String, reason: String)] = []
    /// The step loop's sim time when the current episode started: a stamped robot command from
    /// before it was meant for an earlier episode and is refused.
    package var episodeStartTime = 0.0
    /// Where commands the task makes from its action are counted (the server's `/env_<i>/action`).
    package let actionTopic: String
    /// The world's reset ranges in force, handed to the task in every view (set by
    /// `World.setResetRanges`; each env holds its own copy, so workers never share its storage).
    package var resetRanges = ResetRanges()

    package init(index: Int, model: MuJoCoModel, observationSize: Int, actionSize: Int, termCount: Int, seed: UInt64, actionTopic: String) {
        self.index = index
        seedIndex = index
        guard let d = mj_makeData(model.pointer) else { fatalError("mj_makeData failed: out of memory") }
        data = d
        runSeed = seed
        observation = Array(repeating: 0, count: observationSize)
        terms = Array(repeating: 0, count: termCount)
        action = Array(repeating: 0, count: actionSize)
        self.actionTopic = actionTopic
    }

    deinit { mj_deleteData(data) }

    /// The plugin-facing view of this env's state; valid until the next MuJoCo call on it.
    /// (Fields are read through the pointers: a copy of `mjData` itself would move ~50 KB.)
    package func view(_ model: MuJoCoModel) -> EnvView {
        let m = model.pointer, d = data
        let nq = Int(m.pointee.nq), nv = Int(m.pointee.nv), nu = Int(m.pointee.nu)
        let nbody = Int(m.pointee.nbody), nsite = Int(m.pointee.nsite)
        return EnvView(
            index: index, time: d.pointee.time,
            qpos: UnsafeMutableBufferPointer(start: d.pointee.qpos, count: nq),
            qvel: UnsafeMutableBufferPointer(start: d.pointee.qvel, count: nv),
            ctrl: UnsafeMutableBufferPointer(start: d.pointee.ctrl, count: nu),
            xpos: UnsafeBufferPointer(start: d.pointee.xpos, count: nbody * 3),
            xquat: UnsafeBufferPointer(start: d.pointee.xquat, count: nbody * 4),
            siteXpos: UnsafeBufferPointer(start: d.pointee.site_xpos, count: nsite * 3),
            siteXmat: UnsafeBufferPointer(start: d.pointee.site_xmat, count: nsite * 9),
            resetRanges: resetRanges)
    }

    /// True when the state holds NaN or infinity, or MuJoCo raised a warning (instability, bad QACC).
    package func diverged(_ model: MuJoCoModel) -> Bool {
        if robosim_mj_warning_count(data) > 0 { return true }
        let qpos = data.pointee.qpos!, qvel = data.pointee.qvel!
        for i in 0..<Int(model.pointer.pointee.nq) where !qpos[i].isFinite { return true }
        for i in 0..<Int(model.pointer.pointee.nv) where !qvel[i].isFinite { return true }
        return false
    }
}
