import PluginAPI

/// An axis-aligned box in the world frame that the robot's tool must stay in (the manifest's
/// `workspace`; its floor keeps the tool above the table).
package struct Workspace: Sendable, Equatable {
    package let min: SIMD3<Double>
    package let max: SIMD3<Double>

    package func contains(_ p: SIMD3<Double>) -> Bool { all(p .>= min) && all(p .<= max) }

    /// How far `p` lies outside the box (0 inside).
    package func distanceOutside(_ p: SIMD3<Double>) -> Double {
        let below = (min - p).replacing(with: 0, where: min .< p)
        let above = (p - max).replacing(with: 0, where: p .< max)
        let d = below + above
        return (d * d).sum().squareRoot()
    }

    /// Why `p` is outside, naming the first violated bound; nil inside.
    package func violation(_ p: SIMD3<Double>) -> String? {
        let axes = ["x", "y", "z"]
        for k in 0..<3 {
            if p[k] < min[k] { return "\(axes[k]) = \(fmt(p[k])) m is below the workspace's \(fmt(min[k])) m" }
            if p[k] > max[k] { return "\(axes[k]) = \(fmt(p[k])) m is above the workspace's \(fmt(max[k])) m" }
        }
        return nil
    }
}

/// A number with 4 decimals, for messages.
package func fmt(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    let scaled = (x * 10_000).rounded() / 10_000
    return "\(scaled)"
}

/// The stateless half of the safety layer: every robot command, from a topic or from a task, is
/// checked here before it is queued (sizes, NaN and infinity, joint position and velocity
/// limits, drive limits, the workspace box for end-effector targets). The motion generator does
/// the rest, with the robot's state: reachability through inverse kinematics, acceleration
/// limits, and a protective stop before the tool leaves the workspace.
package struct SafetyLayer: Sendable {
    package let joints: [RobotJoint]
    package let drive: DriveLimits?
    package let hasEndEffector: Bool
    package let workspace: Workspace?

    package init(robot: RobotDescription?, workspace: Workspace?) {
        joints = robot?.joints ?? []
        drive = robot?.drive
        hasEndEffector = robot?.endEffectorSite != nil
        self.workspace = workspace
    }

    /// Nil when `command` may go to the motion generator, else why not.
    package func rejection(of command: RobotCommand) -> String? {
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

    /// Accelerations in a point are bounds the sender expects; they must not exceed the robot's.
    package func checkAccelerations(_ a: [Double]) -> String? {
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
}

/// Why a command message was refused.
package struct CommandError: Error, ExpressibleByStringLiteral, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
    package init(stringLiteral value: String) { description = value }
}
