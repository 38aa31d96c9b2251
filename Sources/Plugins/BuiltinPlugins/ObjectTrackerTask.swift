import Foundation
import PluginAPI

/// A TurtleBot3 Waffle Pi-class follower drives toward a Burger-class leader that wanders.
///
/// - Action (2) in -1...1: follower forward speed and turn rate, as fractions of
///   `max_linear_velocity` (m/s) and `max_angular_velocity` (rad/s); turned into wheel speeds for
///   the velocity actuators `follower_left_motor` / `follower_right_motor`.
/// - Discrete steering (`steering_commands` N in 2...64; default 0, continuous): the action is one
///   index in 0..<N, command k driving at the fractions (`steer_<k>_linear`, `steer_<k>_angular`),
///   each in -1...1. Defaults for the first six (the object-tracker sample's steering: chase and
///   search): 0 straight at full speed (1, 0); 1 and 2 gentle left and right (0.8, ±0.3); 3 and 4
///   sharp left and right at reduced speed (0.4, ±0.8); 5 turn in place to the left (0, 0.8).
///   Commands past the sixth have no default and must be given.
/// - Observation (6): leader position in the follower's frame, measured from the follower's camera
///   (`camera_offset`, default 0.073 m ahead of the base origin; x forward, y left; m), distance (m),
///   bearing (rad), follower forward speed (m/s) and turn rate (rad/s).
/// - Reward terms: `closeness` = exp(-distance) × 1, `progress` = distance shrunk this step (m) × 10,
///   `success` × 10, `failure` × -10.
/// - Success (terminates) when the distance is under `success_distance` (0.2 m); failure
///   (terminates) beyond `failure_distance` (5 m).
/// - Reset: follower at the origin facing +x; leader at a distance and bearing drawn from
///   `reset.leader_distance` and `reset.leader_bearing`, heading from `reset.leader_yaw` (the ranges
///   in force at each reset; `/sim/set_parameters` can change them). The leader drives a seeded
///   wandering path: constant speed, sinusoidal turn rate.
public final class ObjectTrackerTask: TaskPlugin {
    public static let name = "object_tracker"

    struct Leader {
        var speed = 0.0, turnAmplitude = 0.0, turnPeriod = 1.0, phase = 0.0
        var lastDistance = 0.0
    }

    let follower: ModelView.Joint, leader: ModelView.Joint
    let followerMotors: (Int, Int), leaderMotors: (Int, Int)
    let maxLinear: Double, maxAngular: Double, leaderMaxLinear: Double, leaderMaxAngular: Double
    let wheelRadius: Double, separation: Double, leaderWheelRadius: Double, leaderSeparation: Double
    let successDistance: Double, failureDistance: Double
    /// The configured reset ranges: the fallback when the env carries none.
    let distanceRange: ClosedRange<Double>, bearingRange: ClosedRange<Double>, yawRange: ClosedRange<Double>
    let controlDt: Double
    let cameraOffset: Double
    let leaders: PerEnv<Leader>
    /// Discrete steering: (linear, angular) fractions per command; empty for the continuous action.
    let steering: [(linear: Double, angular: Double)]
    public var actionChoices: Int { steering.count }

    /// The default steering commands (`steer_<k>_linear`, `steer_<k>_angular` override them).
    static let defaultSteering: [(linear: Double, angular: Double)] = [(1, 0), (0.8, 0.3), (0.8, -0.3), (0.4, 0.8), (0.4, -0.8), (0, 0.8)]

    public init(model: ModelView, configuration c: TaskConfiguration) throws(PluginError) {
        follower = try model.joint("follower_root")
        leader = try model.joint("leader_root")
        guard follower.kind == .free, leader.kind == .free else { throw PluginError("follower_root and leader_root must be free joints") }
        followerMotors = (try model.actuator("follower_left_motor"), try model.actuator("follower_right_motor"))
        leaderMotors = (try model.actuator("leader_left_motor"), try model.actuator("leader_right_motor"))
        maxLinear = c.parameter("max_linear_velocity", default: 0.26)
        maxAngular = c.parameter("max_angular_velocity", default: 1.82)
        leaderMaxLinear = c.parameter("leader_max_linear_velocity", default: 0.22)
        leaderMaxAngular = c.parameter("leader_max_angular_velocity", default: 2.84)
        wheelRadius = c.parameter("wheel_radius", default: 0.033)
        separation = c.parameter("wheel_separation", default: 0.287)
        leaderWheelRadius = c.parameter("leader_wheel_radius", default: 0.033)
        leaderSeparation = c.parameter("leader_wheel_separation", default: 0.160)
        successDistance = c.parameter("success_distance", default: 0.2)
        failureDistance = c.parameter("failure_distance", default: 5)
        distanceRange = c.range("leader_distance", default: 1...2.5)
        bearingRange = c.range("leader_bearing", default: -0.6...0.6)
        yawRange = c.range("leader_yaw", default: -Double.pi...Double.pi)
        controlDt = c.controlDt
        cameraOffset = c.parameter("camera_offset", default: 0.073)
        leaders = PerEnv(count: c.envCount, initial: Leader())
        let commands = c.parameter("steering_commands", default: 0)
        guard commands == 0 || (commands >= 2 && commands <= 64 && commands == commands.rounded()) else {
            throw PluginError("steering_commands must be 0 (continuous) or a whole number in 2...64, not \(commands)")
        }
        var steering: [(linear: Double, angular: Double)] = []
        for k in 0..<Int(commands) {
            let fallback = k < Self.defaultSteering.count ? Self.defaultSteering[k] : (linear: Double.nan, angular: Double.nan)
            let command = (linear: c.parameter("steer_\(k)_linear", default: fallback.linear), angular: c.parameter("steer_\(k)_angular", default: fallback.angular))
            guard (-1...1).contains(command.linear), (-1...1).contains(command.angular) else {
                throw PluginError("steer_\(k)_linear and steer_\(k)_angular must be given in -1...1 (defaults exist for the first \(Self.defaultSteering.count) commands)")
            }
            steering.append(command)
        }
        self.steering = steering
    }

    public var observationSize: Int { 6 }
    public var actionSize: Int { steering.isEmpty ? 2 : 1 }
    public var observationNames: [Quantity] {
        [Quantity("leader_x", "m"), Quantity("leader_y", "m"), Quantity("leader_distance", "m"), Quantity("leader_bearing", "rad"),
         Quantity("forward_speed", "m/s"), Quantity("turn_rate", "rad/s")]
    }
    /// Where the leader is; the follower's own speed and turn rate are the robot's.
    public var environmentObservations: [String] { ["leader_x", "leader_y", "leader_distance", "leader_bearing"] }
    /// Forward speed and turn rate as fractions of `max_linear_velocity` and `max_angular_velocity`
    /// (discrete steering: the command's index).
    public var actionNames: [Quantity] { steering.isEmpty ? [Quantity("linear", "1"), Quantity("angular", "1")] : [Quantity("steering", "")] }
    public var actionLow: [Double] { steering.isEmpty ? [-1, -1] : [0] }
    public var actionHigh: [Double] { steering.isEmpty ? [1, 1] : [Double(steering.count - 1)] }
    public var successCriterion: String { String(format: "the follower comes within %.2f m of the leader", successDistance) }
    /// Reads only qpos and qvel.
    public var usesPoses: Bool { false }
    public var robotBody: String? { "follower" }
    public var objectBodies: [String] { ["leader"] }
    public var rewardTerms: [RewardTerm] {
        [RewardTerm("closeness", weight: 1), RewardTerm("progress", weight: 10), RewardTerm("success", weight: 10), RewardTerm("failure", weight: -10)]
    }

    /// Planar pose (x, y, yaw) of a free joint.
    static func pose(_ env: EnvView, _ j: ModelView.Joint) -> (x: Double, y: Double, yaw: Double) {
        let a = j.qposAddress
        let (w, x, y, z) = (env.qpos[a + 3], env.qpos[a + 4], env.qpos[a + 5], env.qpos[a + 6])
        return (env.qpos[a], env.qpos[a + 1], atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
    }

    static func setPlanarPose(_ env: EnvView, _ j: ModelView.Joint, x: Double, y: Double, yaw: Double) {
        let a = j.qposAddress
        env.qpos[a] = x
        env.qpos[a + 1] = y
        env.qpos[a + 3] = cos(yaw / 2)
        env.qpos[a + 4] = 0
        env.qpos[a + 5] = 0
        env.qpos[a + 6] = sin(yaw / 2)
        for i in 0..<6 { env.qvel[j.dofAddress + i] = 0 }
    }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        Self.setPlanarPose(env, follower, x: 0, y: 0, yaw: 0)
        let d = random.uniform(env.range("leader_distance", default: distanceRange))
        let bearing = random.uniform(env.range("leader_bearing", default: bearingRange))
        let yaw = random.uniform(env.range("leader_yaw", default: yawRange))
        Self.setPlanarPose(env, leader, x: cameraOffset + d * cos(bearing), y: d * sin(bearing), yaw: yaw)
        leaders[env.index] = Leader(
            speed: random.uniform(0.3...0.8) * leaderMaxLinear,
            turnAmplitude: random.uniform(0...0.5) * leaderMaxAngular,
            turnPeriod: random.uniform(4...10),
            phase: random.uniform(0...(2 * Double.pi)),
            lastDistance: d)
    }

    static func drive(_ env: EnvView, motors: (Int, Int), linear v: Double, angular w: Double, radius: Double, separation: Double) {
        env.ctrl[motors.0] = (v - w * separation / 2) / radius
        env.ctrl[motors.1] = (v + w * separation / 2) / radius
    }

    public func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>) {
        // The server refuses an index out of range; clamped all the same (a NaN to command 0).
        let command = steering.isEmpty ? (linear: action[0], angular: action[1])
            : steering[action[0].isFinite ? min(max(Int(action[0]), 0), steering.count - 1) : 0]
        Self.drive(env, motors: followerMotors, linear: command.linear * maxLinear, angular: command.angular * maxAngular,
                   radius: wheelRadius, separation: separation)
        let plan = leaders[env.index]
        let turn = plan.turnAmplitude * sin(2 * Double.pi * env.time / plan.turnPeriod + plan.phase)
        Self.drive(env, motors: leaderMotors, linear: plan.speed, angular: turn, radius: leaderWheelRadius, separation: leaderSeparation)
    }

    public func observe(_ env: EnvView, into o: UnsafeMutableBufferPointer<Double>) {
        let f = Self.pose(env, follower), l = Self.pose(env, leader)
        let (c, s) = (cos(f.yaw), sin(f.yaw))
        let (dx, dy) = (l.x - (f.x + cameraOffset * c), l.y - (f.y + cameraOffset * s))
        o[0] = c * dx + s * dy
        o[1] = -s * dx + c * dy
        o[2] = (dx * dx + dy * dy).squareRoot()
        o[3] = atan2(o[1], o[0])
        let v = env.qvel
        o[4] = v[follower.dofAddress] * c + v[follower.dofAddress + 1] * s
        o[5] = v[follower.dofAddress + 5]
    }

    public func postStep(_ env: EnvView, observation o: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus {
        observe(env, into: o)
        let distance = o[2]
        let succeeded = distance < successDistance
        let failed = distance > failureDistance
        terms[0] = exp(-distance)
        terms[1] = leaders[env.index].lastDistance - distance
        terms[2] = succeeded ? 1 : 0
        terms[3] = failed ? 1 : 0
        leaders[env.index].lastDistance = distance
        return StepStatus(terminated: succeeded || failed, success: succeeded)
    }
}
