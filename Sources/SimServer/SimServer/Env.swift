import CMuJoCo
import Messaging
import PluginAPI

/// One environment: its MuJoCo data and episode bookkeeping. Used by one thread at a time (the
/// step loop, or the worker it hands the env to for one batch).
final class Env: @unchecked Sendable {
    // Invariant: accessed by one thread at a time; the step loop's batches hand disjoint envs to workers.
    let index: Int
    let data: UnsafeMutablePointer<mjData>
    /// Seed of the current run of episodes (the server's `--seed`, or the last `/sim/reset` seed).
    var runSeed: UInt64
    /// Episode index within the run, and the seed reported for it.
    var episode: UInt64 = 0
    var episodeSeed: UInt64 = 0
    var steps = 0
    var episodeReturn = 0.0
    var observation: [Double]
    var terms: [Double]
    /// The clipped action of the current step, and MuJoCo's error text (preallocated: no
    /// allocation per step).
    var action: [Double]
    var error = [CChar](repeating: 0, count: 256)
    var reward = 0.0
    var terminated = false
    var truncated = false
    var success = false
    /// Set when the last step ended the episode and the env auto-reset.
    var finalObservation: [Double]?
    /// Episode events produced by the last batch, published by the step loop.
    var events: [Robosim_EpisodeEvent] = []
    /// The world's reset ranges in force, handed to the task in every view (set by
    /// `World.setResetRanges`; each env holds its own copy, so workers never share its storage).
    var resetRanges = ResetRanges()

    init(index: Int, model: MuJoCoModel, observationSize: Int, actionSize: Int, termCount: Int, seed: UInt64) {
        self.index = index
        guard let d = mj_makeData(model.pointer) else { fatalError("mj_makeData failed: out of memory") }
        data = d
        runSeed = seed
        observation = Array(repeating: 0, count: observationSize)
        terms = Array(repeating: 0, count: termCount)
        action = Array(repeating: 0, count: actionSize)
    }

    deinit { mj_deleteData(data) }

    /// The plugin-facing view of this env's state; valid until the next MuJoCo call on it.
    func view(_ model: MuJoCoModel) -> EnvView {
        let m = model.pointer.pointee, d = data.pointee
        return EnvView(
            index: index, time: d.time,
            qpos: UnsafeMutableBufferPointer(start: d.qpos, count: Int(m.nq)),
            qvel: UnsafeMutableBufferPointer(start: d.qvel, count: Int(m.nv)),
            ctrl: UnsafeMutableBufferPointer(start: d.ctrl, count: Int(m.nu)),
            xpos: UnsafeBufferPointer(start: d.xpos, count: Int(m.nbody) * 3),
            xquat: UnsafeBufferPointer(start: d.xquat, count: Int(m.nbody) * 4),
            siteXpos: UnsafeBufferPointer(start: d.site_xpos, count: Int(m.nsite) * 3),
            siteXmat: UnsafeBufferPointer(start: d.site_xmat, count: Int(m.nsite) * 9),
            resetRanges: resetRanges)
    }

    /// True when the state holds NaN or infinity, or MuJoCo raised a warning (instability, bad QACC).
    func diverged(_ model: MuJoCoModel) -> Bool {
        let m = model.pointer.pointee, d = data.pointee
        if robosim_mj_warning_count(data) > 0 { return true }
        for i in 0..<Int(m.nq) where !d.qpos[i].isFinite { return true }
        for i in 0..<Int(m.nv) where !d.qvel[i].isFinite { return true }
        return false
    }
}
