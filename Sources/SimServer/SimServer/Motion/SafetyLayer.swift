import Messaging
import PluginAPI

/// An axis-aligned box in the world frame that the robot's tool must stay in (the manifest's
/// `workspace`; its floor keeps the tool above the table).
struct Workspace: Sendable, Equatable {
    let min: SIMD3<Double>
    let max: SIMD3<Double>

    func contains(_ p: SIMD3<Double>) -> Bool { all(p .>= min) && all(p .<= max) }

    /// How far `p` lies outside the box (0 inside).
    func distanceOutside(_ p: SIMD3<Double>) -> Double {
        let below = (min - p).replacing(with: 0, where: min .< p)
        let above = (p - max).replacing(with: 0, where: p .< max)
        let d = below + above
        return (d * d).sum().squareRoot()
    }

    /// Why `p` is outside, naming the first violated bound; nil inside.
    func violation(_ p: SIMD3<Double>) -> String? {
        let axes = ["x", "y", "z"]
        for k in 0..<3 {
            if p[k] < min[k] { return "\(axes[k]) = \(fmt(p[k])) m is below the workspace's \(fmt(min[k])) m" }
            if p[k] > max[k] { return "\(axes[k]) = \(fmt(p[k])) m is above the workspace's \(fmt(max[k])) m" }
        }
        return nil
    }
}

/// A number with 4 decimals, for messages.
func fmt(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    let scaled = (x * 10_000).rounded() / 10_000
    return "\(scaled)"
}

/// The stateless half of the safety layer: every robot command, from a topic or from a task, is
/// checked here before it is queued (sizes, NaN and infinity, joint position and velocity
/// limits, drive limits, the workspace box for end-effector targets). The motion generator does
/// the rest, with the robot's state: reachability through inverse kinematics, acceleration
/// limits, and a protective stop before the tool leaves the workspace.
struct SafetyLayer: Sendable {
    let joints: [RobotJoint]
    let drive: DriveLimits?
    let hasEndEffector: Bool
    let workspace: Workspace?

    init(robot: RobotDescription?, workspace: Workspace?) {
        joints = robot?.joints ?? []
        drive = robot?.drive
        hasEndEffector = robot?.endEffectorSite != nil
        self.workspace = workspace
    }

    /// Nil when `command` may go to the motion generator, else why not.
    func rejection(of command: RobotCommand) -> String? {
        switch command {
        case .jointPositions(let q, let duration):
            if let reason = checkJointVector(q, what: "position") { return reason }
            for (k, j) in joints.enumerated() where !j.limits.position.contains(q[k]) {
                return "\(j.name) position \(fmt(q[k])) is outside its limits [\(fmt(j.limits.position.lowerBound)), \(fmt(j.limits.position.upperBound))]"
            }
            if let duration, !(duration > 0 && duration.isFinite) { return "time_from_start must be positive and finite" }
        case .jointVelocities(let v):
            if let reason = checkJointVector(v, what: "velocity") { return reason }
            for (k, j) in joints.enumerated() where abs(v[k]) > j.limits.velocity {
                return "\(j.name) velocity \(fmt(v[k])) exceeds its limit \(fmt(j.limits.velocity))"
            }
        case .twist(let linear, let angular):
            guard let drive else { return "this robot takes no cmd_vel (it is not a mobile base)" }
            guard linear.isFinite, angular.isFinite else { return "velocities must be finite" }
            guard abs(linear) <= drive.linear else { return "linear.x = \(linear) m/s exceeds the limit \(drive.linear) m/s" }
            guard abs(angular) <= drive.angular else { return "angular.z = \(angular) rad/s exceeds the limit \(drive.angular) rad/s" }
        case .endEffector(let p, let orientation):
            guard hasEndEffector else { return "this robot takes no end-effector targets (it has no tool site)" }
            guard all(p .== p) && p.x.isFinite && p.y.isFinite && p.z.isFinite else { return "the target position must be finite" }
            if let o = orientation {
                guard o.x.isFinite, o.y.isFinite, o.z.isFinite, o.w.isFinite else { return "the target orientation must be finite" }
                let norm = (o * o).sum().squareRoot()
                guard abs(norm - 1) <= 1e-3 else { return "the target orientation is not a unit quaternion (norm \(fmt(norm)))" }
            }
            if let workspace, let why = workspace.violation(p) { return "target outside the workspace: \(why)" }
        }
        return nil
    }

    private func checkJointVector(_ values: [Double], what: String) -> String? {
        guard !joints.isEmpty else { return "this robot takes no joint commands" }
        guard values.count == joints.count else { return "expected \(joints.count) joint \(what)s (\(joints.map(\.name).joined(separator: ", "))), got \(values.count)" }
        for (k, v) in values.enumerated() where !v.isFinite { return "\(joints[k].name) \(what) is \(v); commands must be finite" }
        return nil
    }

    // MARK: Messages to commands

    /// A `JointTrajectoryPoint`: positions (optionally with `time_from_start`), or velocities.
    func command(from point: TrajectoryMsgs_JointTrajectoryPoint) -> Result<RobotCommand, CommandError> {
        guard point.effort.isEmpty else { return .failure("effort commands are not supported; send positions or velocities") }
        let t = Double(point.timeFromStart.sec) + Double(point.timeFromStart.nanosec) / 1e9
        if !point.positions.isEmpty {
            guard point.velocities.allSatisfy({ $0 == 0 }) else {
                return .failure("send positions or velocities, not both (velocities at a waypoint are not supported)")
            }
            if let reason = checkAccelerations(point.accelerations) { return .failure(CommandError(reason)) }
            return .success(.jointPositions(point.positions, duration: t > 0 ? t : nil))
        }
        guard !point.velocities.isEmpty else { return .failure("the point has neither positions nor velocities") }
        if let reason = checkAccelerations(point.accelerations) { return .failure(CommandError(reason)) }
        return .success(.jointVelocities(point.velocities))
    }

    /// Accelerations in a point are bounds the sender expects; they must not exceed the robot's.
    private func checkAccelerations(_ a: [Double]) -> String? {
        guard !a.isEmpty else { return nil }
        guard a.count == joints.count else { return "expected \(joints.count) accelerations, got \(a.count)" }
        for (k, x) in a.enumerated() {
            guard x.isFinite else { return "\(joints[k].name) acceleration is \(x); commands must be finite" }
            guard abs(x) <= joints[k].limits.acceleration else {
                return "\(joints[k].name) acceleration \(fmt(x)) exceeds its limit \(fmt(joints[k].limits.acceleration))"
            }
        }
        return nil
    }

    /// A `PoseStamped` in the world frame (`frame_id` empty or `world`). An all-zero orientation
    /// means "keep the tool's current orientation".
    func command(from pose: GeometryMsgs_PoseStamped) -> Result<RobotCommand, CommandError> {
        let frame = pose.header.frameID
        guard frame.isEmpty || frame == "world" else { return .failure(CommandError("frame_id '\(frame)' is not supported; give targets in 'world'")) }
        let p = SIMD3(pose.pose.position.x, pose.pose.position.y, pose.pose.position.z)
        let o = pose.pose.orientation
        let q = SIMD4(o.w, o.x, o.y, o.z)
        return .success(.endEffector(position: p, orientation: q == .zero ? nil : q))
    }

    /// A `Twist` for a differential drive: only `linear.x` and `angular.z`.
    func command(from t: GeometryMsgs_Twist) -> Result<RobotCommand, CommandError> {
        let all = [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
        guard all.allSatisfy(\.isFinite) else { return .failure("velocities must be finite") }
        guard abs(t.linear.y) < 1e-9, abs(t.linear.z) < 1e-9, abs(t.angular.x) < 1e-9, abs(t.angular.y) < 1e-9 else {
            return .failure("a differential drive takes linear.x and angular.z only")
        }
        return .success(.twist(linear: t.linear.x, angular: t.angular.z))
    }
}

/// Why a command message was refused.
struct CommandError: Error, ExpressibleByStringLiteral, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
    init(stringLiteral value: String) { description = value }
}
