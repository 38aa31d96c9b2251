import Foundation
import PluginAPI

/// Push a T-shaped bar into its T-slot on a workbench with a UR5-class arm's pusher (Push-T on a
/// real arm).
///
/// - Reset: the T-bar at a seeded pose on the table: `tbar_start_x/y` plus offsets drawn from
///   `reset.tbar_x` and `reset.tbar_y`, yaw from `reset.tbar_yaw` (rad). The slot is fixed at
///   `tslot_x`, `tslot_y`, `tslot_yaw` (the `tslot` marker of the model). The arm starts at the
///   model's `home` keyframe.
/// - Observation (23): tool tip position (3, m); arm joint positions (6, rad) and velocities (6,
///   rad/s); T-bar x, y (m), cos yaw, sin yaw; slot x, y, cos yaw, sin yaw.
/// - Action (2) in -1...1: planar tool velocity as fractions of `max_ee_speed` (m/s). The tool moves
///   at the fixed height `ee_height` above the table (`table_height`); the task turns the action
///   into an end-effector target, so it passes the server's safety layer and motion generator.
/// - Reward terms (value × weight): `position_progress` (T-bar-to-slot distance shrunk this step,
///   m) × 10, `yaw_progress` (yaw error shrunk, rad) × 1, `tool_distance` (tool to T-bar, m) × -0.1,
///   `success` × 10, `failure` × -10.
/// - Success (terminates): the T-bar within `success_position_tolerance` (0.015 m) and
///   `success_yaw_tolerance_deg` (5°) of the slot. Failure (terminates): the T-bar off the table.
public final class TbarPushTask: TaskPlugin {
    public static let name = "tbar_push"

    struct EnvState {
        var lastDistance = 0.0
        var lastYawError = 0.0
        /// Where the task steers the tool (x, y), once known this episode.
        var target: SIMD2<Double>?
    }

    let bar: ModelView.Joint
    let tool: Int
    let arm: [ModelView.Joint]
    let start: SIMD3<Double>
    let slot: SIMD3<Double>   // x, y, yaw
    let xRange: ClosedRange<Double>, yRange: ClosedRange<Double>, yawRange: ClosedRange<Double>
    let positionTolerance: Double, yawTolerance: Double
    let toolHeight: Double, tableHeight: Double, speed: Double, controlDt: Double
    /// Where the tool may be steered (x, y), inside the table edges.
    let reachX: ClosedRange<Double>, reachY: ClosedRange<Double>
    let states: PerEnv<EnvState>

    public init(model: ModelView, configuration c: TaskConfiguration) throws(PluginError) {
        bar = try model.joint("tbar_root")
        guard bar.kind == .free else { throw PluginError("tbar_root must be a free joint") }
        tool = try model.site("ee_site")
        arm = try Self.armJoints
            .map { name throws(PluginError) in try model.joint(name) }
        start = SIMD3(c.parameter("tbar_start_x", default: 0.05), c.parameter("tbar_start_y", default: -0.15),
                      c.parameter("tbar_start_z", default: 0.765))
        slot = SIMD3(c.parameter("tslot_x", default: 0.15), c.parameter("tslot_y", default: 0.15), c.parameter("tslot_yaw", default: 0))
        xRange = c.range("tbar_x", default: -0.15...0.15)
        yRange = c.range("tbar_y", default: -0.1...0.1)
        yawRange = c.range("tbar_yaw", default: -Double.pi...Double.pi)
        positionTolerance = c.parameter("success_position_tolerance", default: 0.015)
        yawTolerance = c.parameter("success_yaw_tolerance_deg", default: 5) * Double.pi / 180
        tableHeight = c.parameter("table_height", default: 0.75)
        toolHeight = tableHeight + c.parameter("ee_height", default: 0.02)
        speed = c.parameter("max_ee_speed", default: 0.25)
        controlDt = c.controlDt
        reachX = c.parameter("tool_x_min", default: -0.3)...c.parameter("tool_x_max", default: 0.5)
        reachY = c.parameter("tool_y_min", default: -0.35)...c.parameter("tool_y_max", default: 0.35)
        states = PerEnv(count: c.envCount, initial: EnvState())
    }

    public var observationSize: Int { 23 }
    public var actionSize: Int { 2 }
    public var observationNames: [Quantity] {
        [Quantity("tool_x", "m"), Quantity("tool_y", "m"), Quantity("tool_z", "m")]
            + Self.armJoints.map { Quantity($0, "rad") } + Self.armJoints.map { Quantity($0 + "_velocity", "rad/s") }
            + [Quantity("tbar_x", "m"), Quantity("tbar_y", "m"), Quantity("tbar_cos_yaw", "1"), Quantity("tbar_sin_yaw", "1"),
               Quantity("slot_x", "m"), Quantity("slot_y", "m"), Quantity("slot_cos_yaw", "1"), Quantity("slot_sin_yaw", "1")]
    }
    /// The T-bar and its slot; the tool and arm joints are the robot.
    public var environmentObservations: [String] {
        ["tbar_x", "tbar_y", "tbar_cos_yaw", "tbar_sin_yaw", "slot_x", "slot_y", "slot_cos_yaw", "slot_sin_yaw"]
    }
    /// Planar tool velocity as fractions of `max_ee_speed`.
    public var actionNames: [Quantity] { [Quantity("tool_vx", "1"), Quantity("tool_vy", "1")] }
    public var successCriterion: String {
        String(format: "the T-bar rests within %.3f m and %.1f° of the slot pose", positionTolerance, yawTolerance * 180 / Double.pi)
    }
    static let armJoints = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"]
    public var objectBodies: [String] { ["tbar", "tslot"] }
    public var rewardTerms: [RewardTerm] {
        [RewardTerm("position_progress", weight: 10), RewardTerm("yaw_progress", weight: 1), RewardTerm("tool_distance", weight: -0.1),
         RewardTerm("success", weight: 10), RewardTerm("failure", weight: -10)]
    }

    /// The T-bar's planar pose (x, y, yaw) and height.
    func barPose(_ env: EnvView) -> (x: Double, y: Double, yaw: Double, z: Double) {
        let a = bar.qposAddress
        let (w, x, y, z) = (env.qpos[a + 3], env.qpos[a + 4], env.qpos[a + 5], env.qpos[a + 6])
        return (env.qpos[a], env.qpos[a + 1], atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)), env.qpos[a + 2])
    }

    /// Distance (m) and absolute yaw error (rad, in 0...π) of the T-bar from the slot.
    func errors(_ env: EnvView) -> (distance: Double, yaw: Double) {
        let p = barPose(env)
        let (dx, dy) = (p.x - slot.x, p.y - slot.y)
        return ((dx * dx + dy * dy).squareRoot(), abs(Self.wrap(p.yaw - slot.z)))
    }

    static func wrap(_ a: Double) -> Double { atan2(sin(a), cos(a)) }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        let a = bar.qposAddress
        let x = start.x + random.uniform(env.range("tbar_x", default: xRange))
        let y = start.y + random.uniform(env.range("tbar_y", default: yRange))
        let yaw = random.uniform(env.range("tbar_yaw", default: yawRange))
        env.qpos[a] = x
        env.qpos[a + 1] = y
        env.qpos[a + 2] = start.z
        env.qpos[a + 3] = cos(yaw / 2)
        env.qpos[a + 4] = 0
        env.qpos[a + 5] = 0
        env.qpos[a + 6] = sin(yaw / 2)
        for i in 0..<6 { env.qvel[bar.dofAddress + i] = 0 }
        let e = errors(env)
        states[env.index] = EnvState(lastDistance: e.distance, lastYawError: e.yaw, target: nil)
    }

    public func robotCommand(_ env: EnvView, action: UnsafeBufferPointer<Double>) -> RobotCommand? {
        let here = env.sitePosition(tool)
        var target = states[env.index].target ?? SIMD2(here.x, here.y)
        target.x = min(max(target.x + action[0] * speed * controlDt, reachX.lowerBound), reachX.upperBound)
        target.y = min(max(target.y + action[1] * speed * controlDt, reachY.lowerBound), reachY.upperBound)
        states[env.index].target = target
        return .endEffector(position: SIMD3(target.x, target.y, toolHeight), orientation: nil)
    }

    public func observe(_ env: EnvView, into o: UnsafeMutableBufferPointer<Double>) {
        let t = env.sitePosition(tool)
        (o[0], o[1], o[2]) = (t.x, t.y, t.z)
        for (k, j) in arm.enumerated() {
            o[3 + k] = env.qpos[j.qposAddress]
            o[9 + k] = env.qvel[j.dofAddress]
        }
        let p = barPose(env)
        (o[15], o[16], o[17], o[18]) = (p.x, p.y, cos(p.yaw), sin(p.yaw))
        (o[19], o[20], o[21], o[22]) = (slot.x, slot.y, cos(slot.z), sin(slot.z))
    }

    public func postStep(_ env: EnvView, observation o: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus {
        observe(env, into: o)
        let e = errors(env)
        let p = barPose(env)
        var s = states[env.index]
        let succeeded = e.distance <= positionTolerance && e.yaw <= yawTolerance
        let failed = p.z < tableHeight - 0.05 || abs(p.x) > 0.6 || abs(p.y) > 0.4
        let (dx, dy) = (o[0] - p.x, o[1] - p.y)
        terms[0] = s.lastDistance - e.distance
        terms[1] = s.lastYawError - e.yaw
        terms[2] = (dx * dx + dy * dy).squareRoot()
        terms[3] = succeeded ? 1 : 0
        terms[4] = failed ? 1 : 0
        s.lastDistance = e.distance
        s.lastYawError = e.yaw
        states[env.index] = s
        return StepStatus(terminated: succeeded || failed, success: succeeded)
    }
}
