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
/// - Healthy range (gymnasium's `healthy_z_range`, InvertedPendulum's angle limit): the parameters
///   `healthy_min.<observation>` and `healthy_max.<observation>` bound observations by name. With
///   any bound set, the episode terminates when an observation leaves its range or one is not
///   finite; the task then has one reward term, `healthy` (1 while healthy, weight `healthy_reward`,
///   default 1), and succeeds when the episode reaches its time limit healthy. Without bounds: no
///   reward terms, never terminates (episodes end at the time limit).
/// - Reset: the model's initial state (`qpos0`), plus a uniform draw from ±`reset_noise` (default 0)
///   on every position and velocity coordinate (gymnasium's `reset_noise_scale`; its Ant draws
///   velocities from a normal distribution instead); then a hinge or slide joint named in the reset
///   ranges as `joint.<name>` starts at a uniform draw from its range (drawn in joint order).
public final class JointControlTask: TaskPlugin {
    public static let name = "joint_control"

    let nq: Int, nv: Int, nu: Int
    let ranges: [ClosedRange<Double>?]
    /// Hinge and slide joints by index: (name, qpos address).
    let scalarJoints: [(name: String, qpos: Int)]

    public let observationNames: [Quantity]
    public let actionNames: [Quantity]
    public let rewardTerms: [RewardTerm]
    /// Healthy bounds by observation index (empty: the task never terminates).
    let healthy: [(index: Int, range: ClosedRange<Double>)]
    let resetNoise: Double
    /// Control steps per episode (the server's time limit) and each env's steps so far.
    let episodeSteps: Int
    let steps: PerEnv<Int>

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

        let p = configuration
        healthy = try Self.healthyBounds(p.parameters, observations: observationNames)
        rewardTerms = healthy.isEmpty ? [] : [RewardTerm("healthy", weight: p.parameter("healthy_reward", default: 1))]
        resetNoise = p.parameter("reset_noise", default: 0)
        guard resetNoise.isFinite, resetNoise >= 0 else { throw PluginError("reset_noise must be finite and >= 0, not \(resetNoise)") }
        episodeSteps = max(1, Int((p.episodeLength / p.controlDt).rounded()))
        steps = PerEnv(count: p.envCount, initial: 0)
    }

    /// `healthy_min.<name>` and `healthy_max.<name>` parameters as ranges by observation index.
    package static func healthyBounds(_ parameters: [String: Double], observations: [Quantity]) throws(PluginError) -> [(index: Int, range: ClosedRange<Double>)] {
        var low: [Int: Double] = [:], high: [Int: Double] = [:]
        for (key, value) in parameters.sorted(by: { $0.key < $1.key }) {
            let isMin = key.hasPrefix("healthy_min."), isMax = key.hasPrefix("healthy_max.")
            guard isMin || isMax else { continue }
            let name = String(key.dropFirst("healthy_min.".count))
            guard let index = observations.firstIndex(where: { $0.name == name }) else {
                throw PluginError("\(key): no observation named \"\(name)\" (observations: \(observations.map(\.name).joined(separator: ", ")))")
            }
            guard !value.isNaN else { throw PluginError("\(key) is NaN") }
            if isMin { low[index] = value } else { high[index] = value }
        }
        return try Set(low.keys).union(high.keys).sorted().map { (i) throws(PluginError) in
            let (lo, hi) = (low[i] ?? -.infinity, high[i] ?? .infinity)
            guard lo <= hi else { throw PluginError("healthy range of \(observations[i].name) is empty: \(lo) > \(hi)") }
            return (i, lo...hi)
        }
    }

    public var observationSize: Int { nq + nv }
    public var actionSize: Int { nu }
    /// Reads only qpos and qvel.
    public var usesPoses: Bool { false }

    public var successCriterion: String {
        healthy.isEmpty ? "" : "the episode reaches its time limit with " + healthy.map { "\(observationNames[$0.index].name) in [\($0.range.lowerBound), \($0.range.upperBound)]" }.joined(separator: ", ")
    }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        steps[env.index] = 0
        if resetNoise > 0 {
            for i in 0..<nq { env.qpos[i] += random.uniform(-resetNoise...resetNoise) }
            for i in 0..<nv { env.qvel[i] += random.uniform(-resetNoise...resetNoise) }
        }
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
        guard !healthy.isEmpty else { return StepStatus() }
        var ok = true
        for i in 0..<observation.count where !observation[i].isFinite { ok = false }
        for (i, range) in healthy where !range.contains(observation[i]) { ok = false }
        terms[0] = ok ? 1 : 0
        steps[env.index] += 1
        return StepStatus(terminated: !ok, success: ok && steps[env.index] >= episodeSteps)
    }
}
