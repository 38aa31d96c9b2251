import ClientKit
import Foundation
import Messaging
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

/// What a policy knows of the task, from `/sim/describe`: its name, the names of the observation and
/// action components, and the action bounds. Experts find their inputs by name, never by index.
public struct TaskInfo: Sendable {
    public let name: String
    public let observationNames: [String]
    public let actionNames: [String]
    public let actionLow: [Double]
    public let actionHigh: [Double]

    public init(name: String, observationNames: [String], actionNames: [String], actionLow: [Double], actionHigh: [Double]) {
        self.name = name
        self.observationNames = observationNames
        self.actionNames = actionNames
        self.actionLow = actionLow
        self.actionHigh = actionHigh
    }

    /// The scene's task as the server describes it (numbered names for a server that gives none).
    public init(describe d: Robosim_DescribeResponse) {
        self.init(name: d.task.name.isEmpty ? d.scene : d.task.name, observationNames: d.observationNames,
                  actionNames: d.actionNames, actionLow: d.actionLow, actionHigh: d.actionHigh)
    }

    /// The index of observation component `name`, or an error naming what the task has.
    public func index(_ name: String) throws -> Int {
        guard let i = observationNames.firstIndex(of: name) else {
            throw DatasetError("task \(self.name) has no observation '\(name)' (it has \(observationNames.joined(separator: ", ")))")
        }
        return i
    }
}

/// The scripted experts, by task name: each reads the observation components it needs by name.
public enum ScriptedExperts {
    public static let tasks = ["cartpole", "object_tracker", "tbar_push"]

    /// The expert of `task`, or nil when the task has none.
    static func make(_ task: TaskInfo, envs: Int) throws -> (any Policy)? {
        switch task.name {
        case "tbar_push": try StrategistPolicy(task: task, envs: envs)
        case "cartpole": try CartpoleBalancer(task: task)
        case "object_tracker": try PursuitPolicy(task: task)
        default: nil
        }
    }
}

/// Builds the policy `kind` for a scene's task, or says why it cannot.
public func makePolicy(_ kind: PolicyKind, task: TaskInfo, envs: Int, seed: UInt64) throws -> any Policy {
    switch kind {
    case .random:
        return RandomPolicy(low: task.actionLow, high: task.actionHigh, names: task.actionNames, envs: envs, seed: seed)
    case .strategist:
        guard task.name == "tbar_push" else { throw DatasetError("--policy strategist drives the T-bar task (tbar_push), not \(task.name)") }
        return try StrategistPolicy(task: task, envs: envs)
    case .scripted:
        guard let expert = try ScriptedExperts.make(task, envs: envs) else {
            throw DatasetError("--policy scripted: the task \(task.name) has no scripted expert (\(ScriptedExperts.tasks.joined(separator: ", ")) have); try --policy random")
        }
        return expert
    }
}

/// Another policy's actions plus Gaussian noise (standard deviation `std` of each component's
/// half range), clipped to the bounds: the noise injection of DART (Laskey et al., 2017), so that
/// demonstrations also show the expert recovering from states its own clean actions never reach,
/// which behaviour cloning needs. The recorded action is the one sent, noise included, so replay
/// holds. One seeded generator per env.
public struct NoisyPolicy: Policy {
    var base: any Policy
    let std: Double
    let low: [Double], high: [Double]
    var state: [UInt64]
    public var output: PolicyOutput { base.output }
    public var actionNames: [String] { base.actionNames }

    /// `std` must be finite and in 0...10; the base policy must command actions.
    public init(_ base: any Policy, std: Double, task: TaskInfo, envs: Int, seed: UInt64) throws {
        guard std.isFinite, std >= 0, std <= 10 else { throw DatasetError("--action-noise \(std) must be within 0...10") }
        guard base.output == .actions else { throw DatasetError("--action-noise needs a policy that commands task actions, not end-effector targets") }
        self.base = base
        self.std = std
        low = task.actionLow
        high = task.actionHigh
        state = (0..<envs).map { seed &* 0xD1B5_4A32_D192_ED03 &+ UInt64($0) &* 0x9E37_79B9_7F4A_7C15 &+ 0x5851_F42D_4C95_7F2D }
    }

    public mutating func act(env: Int, observation: ArraySlice<Double>, time: Double) -> [Double] {
        var a = base.act(env: env, observation: observation, time: time)
        for k in a.indices where k < low.count {
            let half = (high[k] - low[k]) / 2
            a[k] = min(max(a[k] + std * half * gaussian(env), low[k]), high[k])
        }
        return a
    }

    public mutating func reset(env: Int) { base.reset(env: env) }

    /// A standard normal draw (Box-Muller on two SplitMix64 uniforms).
    private mutating func gaussian(_ env: Int) -> Double {
        func uniform() -> Double {
            state[env] &+= 0x9E37_79B9_7F4A_7C15
            var z = state[env]
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return (Double(z >> 11) + 0.5) / Double(1 << 53)
        }
        let (u, v) = (uniform(), uniform())
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}

/// Uniform random actions, one seeded generator per env (SplitMix64).
struct RandomPolicy: Policy {
    let low: [Double], high: [Double]
    let actionNames: [String]
    var state: [UInt64]
    var output: PolicyOutput { .actions }

    init(low: [Double], high: [Double], names: [String], envs: Int, seed: UInt64) {
        self.low = low
        self.high = high
        actionNames = names
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
/// cart that way) with weaker cart position and velocity terms (signs as an LQR gain has them).
/// Gains from a sweep over 200 seeded episodes of `Scenes/cartpole` (poles start within ±45°):
/// these hold all of them for the 5 s; the earlier (2, 0.3, 0.05, 0.1) lost about a quarter.
struct CartpoleBalancer: Policy {
    let angle: Int, rate: Int, position: Int, velocity: Int
    let actionNames: [String]
    var output: PolicyOutput { .actions }

    init(task: TaskInfo) throws {
        (angle, rate, position, velocity) = (try task.index("pole_angle"), try task.index("pole_angular_velocity"),
                                             try task.index("cart_position"), try task.index("cart_velocity"))
        actionNames = task.actionNames
    }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        let (angle, rate, position, velocity) = (o[b + angle], o[b + rate], o[b + position], o[b + velocity])
        let u = -(5.0 * angle + 0.6 * rate) + 0.2 * position + 0.3 * velocity
        return [min(1, max(-1, u))]
    }

    mutating func reset(env: Int) {}
}

/// Object tracker: drive toward the leader, turning toward its bearing.
struct PursuitPolicy: Policy {
    let distance: Int, bearing: Int
    let actionNames: [String]
    var output: PolicyOutput { .actions }

    init(task: TaskInfo) throws {
        (distance, bearing) = (try task.index("leader_distance"), try task.index("leader_bearing"))
        actionNames = task.actionNames
    }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        let (distance, bearing) = (o[b + distance], o[b + bearing])
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

    /// Indices of the observation components read: tool x, y, z; T-bar x, y, cos, sin; slot x, y, cos, sin.
    let inputs: [Int]

    init(task: TaskInfo, envs: Int) throws {
        inputs = try ["tool_x", "tool_y", "tool_z", "tbar_x", "tbar_y", "tbar_cos_yaw", "tbar_sin_yaw",
                      "slot_x", "slot_y", "slot_cos_yaw", "slot_sin_yaw"].map { try task.index($0) }
        executors = Array(repeating: PushExecutor(), count: envs)
        targets = Array(repeating: nil, count: envs)
    }

    mutating func act(env: Int, observation o: ArraySlice<Double>, time: Double) -> [Double] {
        let b = o.startIndex
        let v = inputs.map { o[b + $0] }
        let tool = SIMD3(v[0], v[1], v[2])
        let bar = Pose2(x: v[3], y: v[4], yaw: atan2(v[6], v[5]))
        let slot = Pose2(x: v[7], y: v[8], yaw: atan2(v[10], v[9]))
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
