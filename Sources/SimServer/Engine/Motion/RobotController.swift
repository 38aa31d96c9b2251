import CMuJoCo
import PluginAPI

/// Where a robot command came from, for counting its rejection.
package struct PendingCommand {
    package let command: RobotCommand
    package let topic: String
    /// The sim time the sender stamped the command with (its header), or nil when unstamped.
    package var stamp: Double? = nil

    package init(command: RobotCommand, topic: String, stamp: Double? = nil) {
        self.command = command
        self.topic = topic
        self.stamp = stamp
    }
}

/// Which input drives an env's robot at the next control step.
package enum ControlSource {
    /// Nothing yet this episode: the task gets a zero action, the robot holds its pose.
    case none
    /// The task's action (`/sim/step` or `/env_i/action`); the robot moves only when the task
    /// turns the action into a robot command.
    case action
    /// A robot command topic (`joint_commands`, `ee_target`, `cmd_vel`).
    case robot
}

/// One env's motion generator state: the joint setpoint and what it moves toward.
package struct MotionState {
    package enum Target {
        case hold
        /// Joint positions, with a speed cap per joint.
        case positions([Double], speeds: [Double])
        /// Joint velocities, commanded at episode time `since`.
        case velocities([Double], since: Double)
        /// A tool pose; `waypoint` moves toward `position` along a straight line.
        case endEffector(position: SIMD3<Double>, orientation: SIMD4<Double>, waypoint: SIMD3<Double>)
        /// A base twist, commanded at episode time `since`.
        case twist(linear: Double, angular: Double, since: Double)
    }

    package var q: [Double]
    package var v: [Double]
    package var target: Target = .hold
    /// A command was accepted this episode.
    package var commanded = false
    /// The topic of the command being executed (for a protective stop's report).
    package var topic = ""
    package var solution: [Double]
    /// The setpoint before this control step's move.
    package var previous: [Double]
    package var scratch: ArmKinematics.Scratch?

    package init(joints n: Int, scratch: ArmKinematics.Scratch?) {
        q = Array(repeating: 0, count: n)
        v = Array(repeating: 0, count: n)
        solution = Array(repeating: 0, count: n)
        previous = Array(repeating: 0, count: n)
        self.scratch = scratch
    }
}

/// The stateful half of the safety layer and the motion generator of a scene's robot: accepts
/// commands that the robot can carry out (reachability by inverse kinematics, the workspace at
/// the target, time-parameterized joint moves within the velocity limits), moves the joint
/// setpoint toward the target within the joints' velocity and acceleration limits, stops the
/// motion before the tool would leave the workspace, and hands each setpoint to the robot plugin.
/// Shared by all envs; the state lives in each `Env`. Thread-safe (immutable).
package final class RobotController: @unchecked Sendable {
    // Invariant: immutable after init; per-env state is passed in.
    package let robot: any RobotPlugin
    package let spec: RobotDescription
    package let safety: SafetyLayer
    package let kinematics: ArmKinematics?
    package let workspace: Workspace?
    package let dt: Double
    /// Velocity and twist commands fall back to zero when none comes for this long (sim seconds).
    package let commandTimeout: Double
    /// Reachability tolerances for end-effector targets.
    package static let positionTolerance = 1e-3, orientationTolerance = 1e-2
    /// Largest gap (m) between a waypoint and the tool position inverse kinematics reaches before
    /// the motion stops.
    package static let trackingTolerance = 5e-3

    package init(robot: any RobotPlugin, model: MuJoCoModel, view: ModelView, workspace: Workspace?, controlDt: Double,
         commandTimeout: Double) throws(PluginError) {
        self.robot = robot
        spec = robot.spec
        self.workspace = workspace
        safety = SafetyLayer(robot: spec, workspace: workspace)
        dt = controlDt
        self.commandTimeout = commandTimeout
        if let site = spec.endEffectorSite {
            guard !spec.joints.isEmpty else { throw PluginError("a robot with an end-effector site needs joints") }
            kinematics = ArmKinematics(model: model, site: try view.site(site), joints: spec.joints)
        } else {
            kinematics = nil
        }
    }

    package func makeState() -> MotionState { MotionState(joints: spec.joints.count, scratch: kinematics?.makeScratch()) }

    /// At episode start: the setpoint is the reset pose, at rest, with no command.
    package func reset(_ s: inout MotionState, qpos: UnsafeMutablePointer<Double>) {
        for (k, j) in spec.joints.enumerated() {
            s.q[k] = qpos[j.joint.qposAddress]
            s.v[k] = 0
        }
        s.target = .hold
        s.commanded = false
        s.topic = ""
    }

    /// Takes `command` as the env's new target, or says why it cannot be carried out (the previous
    /// target then stands).
    package func accept(_ command: RobotCommand, topic: String, state s: inout MotionState, data d: UnsafeMutablePointer<mjData>) -> String? {
        if let reason = safety.rejection(of: command) { return reason }
        let time = d.pointee.time
        switch command {
        case .jointPositions(let q, let duration):
            var speeds = spec.joints.map(\.limits.velocity)
            if let duration {
                for (k, j) in spec.joints.enumerated() {
                    let needed = abs(q[k] - s.q[k]) / duration
                    if needed > j.limits.velocity {
                        return "reaching \(j.name) in \(fmt(duration)) s needs \(fmt(needed)) rad/s, above its limit \(fmt(j.limits.velocity))"
                    }
                    // A joint with almost nothing to do still moves briskly (it may overshoot while braking).
                    speeds[k] = max(needed, 0.05 * j.limits.velocity)
                }
            }
            if let kinematics, let workspace, var scratch = s.scratch {
                let tool = kinematics.toolPose(d, at: q, scratch: &scratch).position
                s.scratch = scratch
                if let why = workspace.violation(tool) { return "the tool would leave the workspace at the target: \(why)" }
            }
            s.target = .positions(q, speeds: speeds)
        case .jointVelocities(let v):
            s.target = .velocities(v, since: time)
        case .twist(let linear, let angular):
            s.target = .twist(linear: linear, angular: angular, since: time)
        case .endEffector(let position, let requested):
            guard let kinematics, var scratch = s.scratch else { return "this robot takes no end-effector targets" }
            defer { s.scratch = scratch }
            let current = kinematics.toolPose(d, at: s.q, scratch: &scratch)
            let orientation = requested ?? current.orientation
            let error = kinematics.solve(d, position: position, orientation: orientation, seed: s.q, iterations: 200,
                                         scratch: &scratch, into: &s.solution)
            guard error.position <= Self.positionTolerance && error.orientation <= Self.orientationTolerance else {
                return "unreachable: the closest joint solution leaves the tool \(fmt(error.position)) m and \(fmt(error.orientation * 180 / .pi))° from the target"
            }
            var waypoint = current.position
            if case .endEffector(_, _, let w) = s.target { waypoint = w }
            s.target = .endEffector(position: position, orientation: orientation, waypoint: waypoint)
        }
        s.commanded = true
        s.topic = topic
        return nil
    }

    /// Advances the setpoint one control step and actuates the robot. Returns why the motion was
    /// stopped (the robot then holds), or nil.
    package func advance(_ s: inout MotionState, env view: EnvView, data d: UnsafeMutablePointer<mjData>) -> String? {
        let time = d.pointee.time
        var stop: String?
        for k in s.q.indices { s.previous[k] = s.q[k] }
        switch s.target {
        case .hold:
            for k in s.v.indices { s.v[k] = 0 }
        case .twist(let linear, let angular, let since):
            let live = time - since <= commandTimeout
            robot.actuate(view, linear: live ? linear : 0, angular: live ? angular : 0)
            return nil
        case .positions(let q, let speeds):
            for (k, j) in spec.joints.enumerated() {
                Self.track(&s.q[k], &s.v[k], toward: q[k], speed: speeds[k], acceleration: j.limits.acceleration, dt: dt)
            }
            stop = protectiveStop(&s, data: d)
        case .velocities(let v, let since):
            let live = time - since <= commandTimeout
            for (k, j) in spec.joints.enumerated() {
                let a = j.limits.acceleration * dt
                // Brake in time for the joint's limits instead of hitting them.
                let range = j.limits.position
                let upper = Self.brakingSpeed(distance: range.upperBound - s.q[k], acceleration: j.limits.acceleration, dt: dt)
                let lower = Self.brakingSpeed(distance: s.q[k] - range.lowerBound, acceleration: j.limits.acceleration, dt: dt)
                let wanted = min(max(live ? v[k] : 0, -lower), upper)
                s.v[k] = min(max(wanted, s.v[k] - a), s.v[k] + a)
                let next = s.q[k] + s.v[k] * dt
                s.q[k] = min(max(next, j.limits.position.lowerBound), j.limits.position.upperBound)
                if s.q[k] != next { s.v[k] = (s.q[k] - s.previous[k]) / dt }   // rounding at the limit: the motion made
            }
            stop = protectiveStop(&s, data: d)
        case .endEffector(let position, let orientation, var waypoint):
            guard let kinematics, var scratch = s.scratch else { break }
            let gap = position - waypoint
            let length = (gap * gap).sum().squareRoot()
            let reach = spec.maxEndEffectorSpeed * dt
            waypoint = length <= reach ? position : waypoint + gap * (reach / length)
            let error = kinematics.solve(d, position: waypoint, orientation: orientation, seed: s.q, iterations: 20,
                                         scratch: &scratch, into: &s.solution)
            s.scratch = scratch
            if error.position > Self.trackingTolerance {
                stop = "stopped: no joint motion keeps the tool on its line (\(fmt(error.position)) m off at (\(fmt(waypoint.x)), \(fmt(waypoint.y)), \(fmt(waypoint.z))))"
                s.target = .hold
                for k in s.v.indices { s.v[k] = 0 }
                break
            }
            for (k, j) in spec.joints.enumerated() {
                Self.track(&s.q[k], &s.v[k], toward: s.solution[k], speed: j.limits.velocity, acceleration: j.limits.acceleration, dt: dt)
            }
            s.target = .endEffector(position: position, orientation: orientation, waypoint: waypoint)
            // The setpoint lags the line (acceleration limits); it must not take the tool out either.
            stop = protectiveStop(&s, data: d)
        }
        guard !spec.joints.isEmpty else { return stop }
        if spec.gravityCompensation {
            // Bias forces of the last physics step (this state's differ by one control step at most).
            for j in spec.joints { d.pointee.qfrc_applied[j.joint.dofAddress] = d.pointee.qfrc_bias[j.joint.dofAddress] }
        }
        s.q.withUnsafeBufferPointer { q in
            s.v.withUnsafeBufferPointer { v in
                robot.actuate(view, joints: JointSetpoint(positions: q, velocities: v), commanded: s.commanded)
            }
        }
        return stop
    }

    /// Before the setpoint takes the tool out of the workspace (or further out), the motion stops
    /// at the previous setpoint.
    private func protectiveStop(_ s: inout MotionState, data d: UnsafeMutablePointer<mjData>) -> String? {
        guard let kinematics, let workspace, var scratch = s.scratch else { return nil }
        defer { s.scratch = scratch }
        let next = kinematics.toolPose(d, at: s.q, scratch: &scratch).position
        let outside = workspace.distanceOutside(next)
        guard outside > 0 else { return nil }
        let before = workspace.distanceOutside(kinematics.toolPose(d, at: s.previous, scratch: &scratch).position)
        guard outside > before + 1e-9 else { return nil }
        for k in s.q.indices { s.q[k] = s.previous[k] }
        for k in s.v.indices { s.v[k] = 0 }
        s.target = .hold
        return "stopped: the tool would leave the workspace (\(workspace.violation(next) ?? "outside"))"
    }

    /// The highest speed from which braking by at most `acceleration` per control step stops
    /// exactly within `distance` (0 when there is none left). From speed v the steps cover
    /// v, v - a·dt, ..., down to the last positive one (each for dt); with m whole steps of braking
    /// that is dt·((m+1)·v - a·dt·m(m+1)/2), solved for v at the largest m that fits.
    package static func brakingSpeed(distance: Double, acceleration: Double, dt: Double) -> Double {
        guard distance > 0 else { return 0 }
        let step = acceleration * dt
        let m = (((1 + 8 * distance / (step * dt)).squareRoot() - 1) / 2).rounded(.down)
        return m * step + (distance - step * dt * m * (m + 1) / 2) / ((m + 1) * dt)
    }

    /// Moves one joint's setpoint toward `target`: no faster than `speed`, with every change of
    /// velocity within `acceleration` (so a moving target is followed smoothly), braking in time
    /// to arrive at rest: at most the speed from which whole control steps of full braking stop
    /// within the remaining distance.
    package static func track(_ q: inout Double, _ v: inout Double, toward target: Double, speed: Double, acceleration: Double, dt: Double) {
        let e = target - q
        let step = acceleration * dt
        // n steps of braking by `step` cover step·dt·n(n+1)/2.
        let wanted = (e >= 0 ? 1.0 : -1.0) * min(speed, brakingSpeed(distance: abs(e), acceleration: acceleration, dt: dt))
        v = min(max(wanted, v - step), v + step)
        q += v * dt
        if abs(target - q) <= 1e-12 * max(1, abs(target)) && abs(v) <= step { q = target }
    }
}
