import Messaging
import PluginAPI
import SimEngine

/// Command messages from the robot topics turned into the engine's typed robot commands, with the
/// checks that belong to the message format; the safety layer checks the command itself.
extension SafetyLayer {
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
