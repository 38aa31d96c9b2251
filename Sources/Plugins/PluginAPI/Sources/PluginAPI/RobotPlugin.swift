/// What a robot plugin is configured with: the scene manifest's values.
public struct RobotConfiguration: Sendable {
    public let scene: String
    public let envCount: Int
    /// Seconds per control step (physics timestep times decimation).
    public let controlDt: Double
    /// Numeric parameters by name (the manifest's `parameters`, shared with the task).
    public let parameters: [String: Double]
    /// Names and other text options by name (the manifest's `robot_options`): joint, actuator, body
    /// and site names of the robot in the model.
    public let options: [String: String]

    public init(scene: String, envCount: Int, controlDt: Double, parameters: [String: Double], options: [String: String]) {
        self.scene = scene
        self.envCount = envCount
        self.controlDt = controlDt
        self.parameters = parameters
        self.options = options
    }

    /// The parameter `name`, or `fallback`.
    public func parameter(_ name: String, default fallback: Double) -> Double { parameters[name] ?? fallback }

    /// The option `name`, or `fallback`.
    public func option(_ name: String, default fallback: String) -> String { options[name] ?? fallback }

    /// A comma-separated list option (`"a, b,c"` → `["a", "b", "c"]`), or `fallback`.
    public func list(_ name: String, default fallback: [String]) -> [String] {
        guard let text = options[name] else { return fallback }
        return text.split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Limits of one commanded joint, enforced by the server's safety layer and motion generator.
public struct JointLimits: Sendable, Equatable {
    /// Position range (radians or metres).
    public var position: ClosedRange<Double>
    /// Largest speed (rad/s or m/s) and acceleration (rad/s² or m/s²) the motion generator uses.
    public var velocity: Double
    public var acceleration: Double

    public init(position: ClosedRange<Double>, velocity: Double, acceleration: Double) {
        self.position = position
        self.velocity = velocity
        self.acceleration = acceleration
    }
}

/// One joint a robot takes commands for.
public struct RobotJoint: Sendable, Equatable {
    public let name: String
    public let joint: ModelView.Joint
    public let limits: JointLimits

    public init(name: String, joint: ModelView.Joint, limits: JointLimits) {
        self.name = name
        self.joint = joint
        self.limits = limits
    }
}

/// Velocity limits of a mobile base: forward speed (m/s) and turn rate (rad/s).
public struct DriveLimits: Sendable, Equatable {
    public let linear: Double
    public let angular: Double
    public init(linear: Double, angular: Double) {
        self.linear = linear
        self.angular = angular
    }
}

/// What a robot is, as far as the server's command topics and safety layer need to know.
public struct RobotDescription: Sendable {
    /// Joints that `/env_i/joint_commands` addresses, in command order (empty: no joint commands).
    public var joints: [RobotJoint]
    /// The tool site of an arm: `/env_i/ee_target` moves it (through inverse kinematics over
    /// `joints`), the workspace box contains it, and `/env_i/robot/pose` reports it.
    public var endEffectorSite: String?
    /// The base body of a mobile robot: `/env_i/robot/pose` and `/env_i/odom` report it.
    public var baseBody: String?
    /// Mobile robots: `/env_i/cmd_vel` is accepted within these limits.
    public var drive: DriveLimits?
    /// Largest tool speed (m/s) when moving to an end-effector target.
    public var maxEndEffectorSpeed: Double
    /// The controller cancels gravity and Coriolis forces on `joints` (as an arm's own controller
    /// does), so position servos hold their setpoints without sagging.
    public var gravityCompensation: Bool

    public init(joints: [RobotJoint] = [], endEffectorSite: String? = nil, baseBody: String? = nil, drive: DriveLimits? = nil,
                maxEndEffectorSpeed: Double = 0.25, gravityCompensation: Bool = false) {
        self.joints = joints
        self.endEffectorSite = endEffectorSite
        self.baseBody = baseBody
        self.drive = drive
        self.maxEndEffectorSpeed = maxEndEffectorSpeed
        self.gravityCompensation = gravityCompensation
    }
}

/// A command for the robot, from a command topic or from a task's action (`TaskPlugin.robotCommand`).
/// The server's safety layer checks it, and its motion generator turns it into a setpoint within
/// the robot's limits.
public enum RobotCommand: Sendable, Equatable {
    /// Joint positions in `RobotDescription.joints` order, reached at the joints' velocity and
    /// acceleration limits, or in `duration` seconds when given (never faster than the limits).
    case jointPositions([Double], duration: Double?)
    /// Joint velocities; they fall back to zero when no new command comes within the command timeout.
    case jointVelocities([Double])
    /// Forward speed (m/s) and turn rate (rad/s) of a mobile base; zero after the command timeout.
    case twist(linear: Double, angular: Double)
    /// A tool position in the world frame, and an orientation (unit quaternion w, x, y, z) or nil
    /// to keep the tool's current orientation. The tool moves along a straight line.
    case endEffector(position: SIMD3<Double>, orientation: SIMD4<Double>?)
}

/// Where a joint robot should be this control step: positions and velocities in
/// `RobotDescription.joints` order. Valid only during the call.
public struct JointSetpoint {
    public let positions: UnsafeBufferPointer<Double>
    public let velocities: UnsafeBufferPointer<Double>
    public init(positions: UnsafeBufferPointer<Double>, velocities: UnsafeBufferPointer<Double>) {
        self.positions = positions
        self.velocities = velocities
    }
}

/// A robot: turns the server's safe setpoints into actuation. The server owns the command topics,
/// the safety layer (sizes, finiteness, joint position/velocity/acceleration limits, the workspace
/// box), inverse kinematics for end-effector targets and the motion generator; a robot plugin
/// describes its joints and limits and writes `ctrl` for each setpoint.
///
/// Phases: configure (`init`), then at each control step, after the task's pre-step and only
/// while a robot command is in effect (from a topic or from the task's `robotCommand`) or the
/// robot holds its pose, one `actuate` call for the env.
public protocol RobotPlugin: AnyObject, Sendable {
    /// The name scene manifests use (`"ur5"`).
    static var name: String { get }

    init(model: ModelView, configuration: RobotConfiguration) throws(PluginError)

    var spec: RobotDescription { get }

    /// Joint robots: write `ctrl` so the joints track `setpoint`. `commanded` is false while the
    /// robot has had no command this episode (hold the setpoint, or leave `ctrl` to the task).
    func actuate(_ env: EnvView, joints setpoint: JointSetpoint, commanded: Bool)
    /// Mobile robots: write `ctrl` for a forward speed (m/s) and turn rate (rad/s) within the limits.
    func actuate(_ env: EnvView, linear: Double, angular: Double)
}

extension RobotPlugin {
    public func actuate(_ env: EnvView, joints setpoint: JointSetpoint, commanded: Bool) {}
    public func actuate(_ env: EnvView, linear: Double, angular: Double) {}
}
