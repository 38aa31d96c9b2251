import Foundation
import StrategistKit

/// What drives the envs while they are recorded. A policy sees each env's observation and its
/// sim time and answers, per env, either a task action or an end-effector target.
public enum PolicyKind: String, Sendable, CaseIterable {
    /// The T-bar flow (`tbar_push`): the offline strategist's pushes as end-effector targets.
    case strategist
    /// The task's own expert: the strategist for `tbar_push`, a balancing controller for
    /// `cartpole`, pursuit for `object_tracker`.
    case scripted
    /// Uniform random actions within the action bounds (seeded).
    case random
}

/// How a policy commands the envs: the task's action vector, or an end-effector position.
public enum PolicyOutput: Sendable, Equatable {
    case actions
    case endEffector
}

/// A policy for one server's envs. Not thread-safe: one collector loop calls it.
public protocol Policy {
    /// What `act` returns per env: actions (`actionSize` values) or targets (x, y, z).
    var output: PolicyOutput { get }
    /// Names of the recorded action's components.
    var actionNames: [String] { get }
    /// The command for env `env` given its observation and the time since its episode started.
    mutating func act(env: Int, observation: ArraySlice<Double>, time: Double) -> [Double]
    /// Env `env` started a new episode.
    mutating func reset(env: Int)
}

/// Builds the policy `kind` for a scene (its task, action size and bounds), or says why it cannot.
public func makePolicy(_ kind: PolicyKind, task: String, envs: Int, actionLow: [Double], actionHigh: [Double], seed: UInt64) throws -> any Policy {
    switch (kind, task) {
    case (.random, _):
        return RandomPolicy(low: actionLow, high: actionHigh, envs: envs, seed: seed)
    case (.strategist, "tbar_push"), (.scripted, "tbar_push"):
        return StrategistPolicy(envs: envs)
    case (.scripted, "cartpole"):
        return CartpoleBalancer()
    case (.scripted, "object_tracker"):
        return PursuitPolicy()
    case (.strategist, _):
        throw DatasetError("--policy strategist drives the T-bar scene (tbar_push), not \(task)")
    case (.scripted, _):
        throw DatasetError("--policy scripted: the scene \(task) has no scripted expert (tbar_push, cartpole and object_tracker have); try --policy random")
    }
}

/// Uniform random actions, one seeded generator per env (SplitMix64).
struct RandomPolicy: Policy {
    let low: [Double], high: [Double]
    var state: [UInt64]
    var output: PolicyOutput { .actions }
    var actionNames: [String] { (0..<low.count).map { "a\($0)" } }

    init(low: [Double], high: [Double], envs: Int, seed: UInt64) {
        self.low = low
        self.high = high
        state = (0..<envs).map { seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64($0) &* 0xD1B5_4A32_D192_ED03 &+ 1 }
    }

    mutating func act(env: Int, observation: ArraySlice<Double>, time: Double) -> [Double] {
        (0..<low.count).map { k in
            state[env] &+= 0x9E37_79B9_7F4A_7C15
            var z = state[env]
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let u = Double(z >> 11) / Double(1 << 53)
            return low[k] + u * (high[k] - low[k])
        }
    }

    mutating func reset(env: Int) {}
}

/// Cartpole: a PD controller on the pole angle (a positive angle tips the pole toward -y: push the
/// cart that way) with weak cart position and velocity terms (signs as an LQR gain has them).
struct CartpoleBalancer: Policy {
    var output: PolicyOutput { .actions }
    var actionNames: [String] { ["cart_force"] }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        let (angle, rate, position, velocity) = (o[b], o[b + 1], o[b + 2], o[b + 3])
        let u = -(2.0 * angle + 0.3 * rate) + 0.05 * position + 0.1 * velocity
        return [min(1, max(-1, u))]
    }

    mutating func reset(env: Int) {}
}

/// Object tracker: drive toward the leader, turning toward its bearing.
struct PursuitPolicy: Policy {
    var output: PolicyOutput { .actions }
    var actionNames: [String] { ["linear", "angular"] }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        let (distance, bearing) = (o[b + 2], o[b + 3])
        let turn = min(1, max(-1, 1.5 * bearing))
        let forward = min(1, max(0, (distance - 0.1) * 1.5)) * max(0, cos(bearing))
        return [forward, turn]
    }

    mutating func reset(env: Int) {}
}

/// The T-bar flow: the offline strategist plans pushes from the observation (tool tip, T-bar
/// pose, slot) and its executor walks the waypoints; the commands are end-effector targets.
struct StrategistPolicy: Policy {
    let planner = OfflinePlanner()
    var executors: [PushExecutor]
    var targets: [SIMD3<Double>?]
    var output: PolicyOutput { .endEffector }
    var actionNames: [String] { ["ee_x", "ee_y", "ee_z"] }

    init(envs: Int) {
        executors = Array(repeating: PushExecutor(), count: envs)
        targets = Array(repeating: nil, count: envs)
    }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        // tbar_push observation: tool tip (0-2), arm q and qd (3-14), T-bar x, y, cos, sin (15-18), slot x, y, cos, sin (19-22).
        let tool = SIMD3(o[b], o[b + 1], o[b + 2])
        let bar = Pose2(x: o[b + 15], y: o[b + 16], yaw: atan2(o[b + 18], o[b + 17]))
        let slot = Pose2(x: o[b + 19], y: o[b + 20], yaw: atan2(o[b + 22], o[b + 21]))
        if executors[env].needsPlan {
            let summary = WorkspaceSummary(tbar: bar, slot: slot, tool: tool, limits: planner.limits)
            if let plan = planner.plan(summary) { executors[env].start(plan, tool: tool, time: time) }
        }
        if let target = executors[env].update(tool: tool, time: time) { targets[env] = target }
        let t = targets[env] ?? tool
        return [t.x, t.y, t.z]
    }

    mutating func reset(env: Int) {
        executors[env].reset()
        targets[env] = nil
    }
}
