import PluginAPI

/// A task-less scene: direct actuator control, for scenes whose task logic lives in a client or is
/// still to come.
///
/// - Observation (nq + nv): every generalized position, then every velocity, named after their
///   joints: `<joint>` and `<joint>_velocity` for hinges (rad, rad/s) and slides (m, m/s); `<joint>_x`,
///   `_y`, `_z`, `_qw`, `_qx`, `_qy`, `_qz` and `<joint>_vx` ... `_wz` for free joints; `qpos_<i>` and
///   `qvel_<i>` for coordinates of unnamed joints.
/// - Action (nu) in -1...1 per actuator, mapped linearly onto its control range (or passed through
///   when the actuator has none), named after the actuators, else after the joint an unnamed one
///   drives, else `actuator_<i>`.
/// - No reward terms; never terminates (episodes end at the time limit).
/// - Reset: the model's initial state (`qpos0`); a hinge or slide joint named in the reset ranges
///   as `joint.<name>` starts at a uniform draw from its range (drawn in joint order).
public final class JointControlTask: TaskPlugin {
    public static let name = "joint_control"

    let nq: Int, nv: Int, nu: Int
    let ranges: [ClosedRange<Double>?]
    /// Hinge and slide joints by index: (name, qpos address).
    let scalarJoints: [(name: String, qpos: Int)]

    public let observationNames: [Quantity]
    public let actionNames: [Quantity]

    public init(model: ModelView, configuration: TaskConfiguration) throws(PluginError) {
        nq = model.nq
        nv = model.nv
        nu = model.nu
        ranges = model.controlRanges
        scalarJoints = model.joints.filter { $0.value.kind == .hinge || $0.value.kind == .slide }
            .sorted { $0.value.index < $1.value.index }.map { ("joint." + $0.key, $0.value.qposAddress) }
        var positions = (0..<model.nq).map { Quantity("qpos_\($0)") }
        var velocities = (0..<model.nv).map { Quantity("qvel_\($0)") }
        for (name, j) in model.joints {
            let (p, v): ([Quantity], [Quantity])
            switch j.kind {
            case .hinge: (p, v) = ([Quantity(name, "rad")], [Quantity(name + "_velocity", "rad/s")])
            case .slide: (p, v) = ([Quantity(name, "m")], [Quantity(name + "_velocity", "m/s")])
            case .ball:
                p = ["qw", "qx", "qy", "qz"].map { Quantity("\(name)_\($0)", "1") }
                v = ["wx", "wy", "wz"].map { Quantity("\(name)_\($0)", "rad/s") }
            case .free:
                p = ["x", "y", "z"].map { Quantity("\(name)_\($0)", "m") } + ["qw", "qx", "qy", "qz"].map { Quantity("\(name)_\($0)", "1") }
                v = ["vx", "vy", "vz"].map { Quantity("\(name)_\($0)", "m/s") } + ["wx", "wy", "wz"].map { Quantity("\(name)_\($0)", "rad/s") }
            }
            for (k, q) in p.enumerated() where j.qposAddress + k < nq { positions[j.qposAddress + k] = q }
            for (k, q) in v.enumerated() where j.dofAddress + k < nv { velocities[j.dofAddress + k] = q }
        }
        observationNames = positions + velocities
        // An actuator's own name; else the joint it drives (when no other actuator has that name);
        // else its index.
        var names = (0..<model.nu).map { "actuator_\($0)" }
        for (name, a) in model.actuators where a < nu { names[a] = name }
        for a in 0..<nu where !model.actuators.values.contains(a) {
            if let joint = model.actuatorJoints[a], !names.contains(joint) { names[a] = joint }
        }
        actionNames = names.enumerated().map { Quantity($1, model.controlRanges[$0] == nil ? "" : "1") }
    }

    public var observationSize: Int { nq + nv }
    public var actionSize: Int { nu }
    /// Reads only qpos and qvel.
    public var usesPoses: Bool { false }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        for (name, address) in scalarJoints {
            if let range = env.resetRanges.ranges[name] { env.qpos[address] = random.uniform(range) }
        }
    }

    public func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>) {
        for a in 0..<nu {
            if let r = ranges[a] {
                env.ctrl[a] = r.lowerBound + (action[a] + 1) / 2 * (r.upperBound - r.lowerBound)
            } else {
                env.ctrl[a] = action[a]
            }
        }
    }

    public func observe(_ env: EnvView, into o: UnsafeMutableBufferPointer<Double>) {
        for i in 0..<nq { o[i] = env.qpos[i] }
        for i in 0..<nv { o[nq + i] = env.qvel[i] }
    }

    public func postStep(_ env: EnvView, observation: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus {
        observe(env, into: observation)
        return StepStatus()
    }
}
