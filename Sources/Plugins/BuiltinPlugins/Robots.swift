import PluginAPI

/// Joints named by the robot option `joints`, each with the manifest's velocity and acceleration
/// limits (`max_joint_velocity`, `max_joint_acceleration`, optionally per joint as
/// `max_joint_velocity.<joint>`) and its model range (or `unlimited`).
private func robotJoints(_ names: [String], model: ModelView, configuration c: RobotConfiguration,
                         velocity: Double, acceleration: Double, unlimited: ClosedRange<Double>) throws(PluginError) -> [RobotJoint] {
    var joints: [RobotJoint] = []
    for name in names {
        let j = try model.joint(name)
        guard j.kind == .hinge || j.kind == .slide else { throw PluginError("robot joint '\(name)' must be a hinge or slide joint") }
        let v = c.parameter("max_joint_velocity.\(name)", default: c.parameter("max_joint_velocity", default: velocity))
        let a = c.parameter("max_joint_acceleration.\(name)", default: c.parameter("max_joint_acceleration", default: acceleration))
        guard v > 0, a > 0, v.isFinite, a.isFinite else { throw PluginError("joint '\(name)': velocity and acceleration limits must be positive") }
        joints.append(RobotJoint(name: name, joint: j, limits: JointLimits(position: j.range ?? unlimited, velocity: v, acceleration: a)))
    }
    return joints
}

private func actuators(_ names: [String], model: ModelView, count: Int) throws(PluginError) -> [Int] {
    guard names.count == count else { throw PluginError("robot option 'actuators' names \(names.count) actuators for \(count) joints") }
    var out: [Int] = []
    for name in names { out.append(try model.actuator(name)) }
    return out
}

/// A UR5-class arm with one position servo per joint (`ctrl` = joint angle). Joint commands and
/// end-effector targets reach the servos as setpoints within UR5's limits: ±2π (elbow ±π) from the
/// model, 180°/s per joint (UR5 data sheet), 8 rad/s² (our conservative choice; UR does not
/// publish per-joint accelerations). The controller compensates gravity, as UR's does. Options: `joints`, `actuators` (default `<joint>_act`),
/// `end_effector_site` (default `ee_site`). Parameter `max_ee_speed` (m/s, default 0.25).
public final class ArmRobot: RobotPlugin {
    public static let name = "ur5"
    public static let ur5Joints = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"]

    public let spec: RobotDescription
    let servos: [Int]

    public init(model: ModelView, configuration c: RobotConfiguration) throws(PluginError) {
        let names = c.list("joints", default: Self.ur5Joints)
        let joints = try robotJoints(names, model: model, configuration: c, velocity: Double.pi, acceleration: 8,
                                     unlimited: -2 * Double.pi...2 * Double.pi)
        servos = try actuators(c.list("actuators", default: names.map { $0 + "_act" }), model: model, count: joints.count)
        let site = c.option("end_effector_site", default: "ee_site")
        _ = try model.site(site)
        let speed = c.parameter("max_ee_speed", default: 0.25)
        guard speed > 0, speed.isFinite else { throw PluginError("max_ee_speed must be positive") }
        spec = RobotDescription(joints: joints, endEffectorSite: site, maxEndEffectorSpeed: speed, gravityCompensation: true)
    }

    public func actuate(_ env: EnvView, joints setpoint: JointSetpoint, commanded: Bool) {
        // Position servos always hold the setpoint (the reset pose until a command comes).
        for (k, a) in servos.enumerated() { env.ctrl[a] = setpoint.positions[k] }
    }
}

/// A differential-drive base (TurtleBot3 class) with velocity-servo wheels. Options: `base`
/// (body), `left_motor`, `right_motor` (velocity actuators, rad/s). Parameters: `wheel_radius`,
/// `wheel_separation` (m), `max_linear_velocity` (m/s), `max_angular_velocity` (rad/s);
/// TurtleBot3 Waffle Pi values by default.
public final class DiffDriveRobot: RobotPlugin {
    public static let name = "diff_drive"

    public let spec: RobotDescription
    let left: Int, right: Int
    let radius: Double, separation: Double

    public init(model: ModelView, configuration c: RobotConfiguration) throws(PluginError) {
        let base = c.option("base", default: "base")
        _ = try model.body(base)
        left = try model.actuator(c.option("left_motor", default: "left_motor"))
        right = try model.actuator(c.option("right_motor", default: "right_motor"))
        radius = c.parameter("wheel_radius", default: 0.033)
        separation = c.parameter("wheel_separation", default: 0.287)
        let limits = DriveLimits(linear: c.parameter("max_linear_velocity", default: 0.26), angular: c.parameter("max_angular_velocity", default: 1.82))
        guard radius > 0, separation > 0, limits.linear > 0, limits.angular > 0 else {
            throw PluginError("wheel_radius, wheel_separation and the velocity limits must be positive")
        }
        spec = RobotDescription(baseBody: base, drive: limits)
    }

    public func actuate(_ env: EnvView, linear v: Double, angular w: Double) {
        env.ctrl[left] = (v - w * separation / 2) / radius
        env.ctrl[right] = (v + w * separation / 2) / radius
    }
}

/// Joints driven by force or torque motors, with a PD controller tracking the setpoint:
/// `ctrl = kp (q* - q) + kd (q̇* - q̇)`, clipped to the actuator's control range. Until a joint
/// command comes, the task's controls stand. Options: `joints`, `actuators` (none: the robot takes
/// no joint commands). Parameters: `joint_kp`, `joint_kd` (control units per m or rad, and per
/// m/s or rad/s), `max_joint_velocity`, `max_joint_acceleration`.
public final class MotorJointsRobot: RobotPlugin {
    public static let name = "motor_joints"

    public let spec: RobotDescription
    let motors: [Int]
    let ranges: [ClosedRange<Double>?]
    let kp: Double, kd: Double

    public init(model: ModelView, configuration c: RobotConfiguration) throws(PluginError) {
        let names = c.list("joints", default: [])
        let joints = try robotJoints(names, model: model, configuration: c, velocity: 1, acceleration: 4,
                                     unlimited: -Double.infinity...Double.infinity)
        motors = try actuators(c.list("actuators", default: []), model: model, count: joints.count)
        ranges = motors.map { model.controlRanges[$0] }
        kp = c.parameter("joint_kp", default: 100)
        kd = c.parameter("joint_kd", default: 20)
        spec = RobotDescription(joints: joints)
    }

    public func actuate(_ env: EnvView, joints setpoint: JointSetpoint, commanded: Bool) {
        guard commanded else { return }
        for (k, a) in motors.enumerated() {
            let j = spec.joints[k].joint
            var u = kp * (setpoint.positions[k] - env.qpos[j.qposAddress]) + kd * (setpoint.velocities[k] - env.qvel[j.dofAddress])
            if let r = ranges[k] { u = min(max(u, r.lowerBound), r.upperBound) }
            env.ctrl[a] = u
        }
    }
}
