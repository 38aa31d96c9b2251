import Messaging
import PluginAPI
import SimEngine

/// The ROS messages of an env's state, built from the engine's plain values: joint states, tf, the
/// robot pose, odometry, the task's objects and episode events. Step loop thread.
extension BodyFrames {
    func jointStateMessage(_ env: Env, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_JointState {
        let (positions, velocities) = jointState(env)
        var js = SensorMsgs_JointState()
        js.header.stamp = stamp
        js.name = jointNames
        js.position = positions
        js.velocity = velocities
        return js
    }

    func transformsMessage(_ env: Env, _ stamp: BuiltinInterfaces_Time) -> Tf2Msgs_TFMessage {
        var m = Tf2Msgs_TFMessage()
        m.transforms = bodies.map { body in
            let p = pose(env, body.index)
            var t = GeometryMsgs_TransformStamped()
            t.header.stamp = stamp
            t.header.frameID = "world"
            t.childFrameID = body.name
            (t.transform.translation.x, t.transform.translation.y, t.transform.translation.z) = (p.position.x, p.position.y, p.position.z)
            t.transform.rotation = GeometryMsgs_Quaternion(p.orientation)
            return t
        }
        return m
    }

    func robotPoseMessage(_ env: Env, _ stamp: BuiltinInterfaces_Time) -> GeometryMsgs_PoseStamped {
        var m = GeometryMsgs_PoseStamped()
        m.header.stamp = stamp
        m.header.frameID = "world"
        if let p = robotPose(env) { m.pose = GeometryMsgs_Pose(p) }
        return m
    }

    func odometryMessage(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> NavMsgs_Odometry {
        var m = NavMsgs_Odometry()
        m.header.stamp = stamp
        m.header.frameID = "world"
        guard let robot else { return m }
        m.childFrameID = robot.name
        m.pose.pose = GeometryMsgs_Pose(pose(env, robot.index))
        m.twist.twist = GeometryMsgs_Twist(twist(env, world, robot.index))
        return m
    }

    func objectArrayMessage(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> Robosim_ObjectArray {
        var m = Robosim_ObjectArray()
        m.header.stamp = stamp
        m.header.frameID = "world"
        m.objects = objects.map { o in
            var s = Robosim_ObjectState()
            s.name = o.name
            s.pose = GeometryMsgs_Pose(pose(env, o.index))
            s.twist = GeometryMsgs_Twist(twist(env, world, o.index))
            return s
        }
        return m
    }
}

extension GeometryMsgs_Quaternion {
    /// From (w, x, y, z).
    init(_ q: SIMD4<Double>) {
        self.init()
        (w, x, y, z) = (q[0], q[1], q[2], q[3])
    }
}

extension GeometryMsgs_Pose {
    init(_ p: WorldPose) {
        self.init()
        (position.x, position.y, position.z) = (p.position.x, p.position.y, p.position.z)
        orientation = GeometryMsgs_Quaternion(p.orientation)
    }
}

extension GeometryMsgs_Twist {
    init(_ t: WorldTwist) {
        self.init()
        (linear.x, linear.y, linear.z) = (t.linear.x, t.linear.y, t.linear.z)
        (angular.x, angular.y, angular.z) = (t.angular.x, t.angular.y, t.angular.z)
    }
}

extension Robosim_EpisodeEvent {
    init(_ e: EpisodeEvent, stamp: BuiltinInterfaces_Time) {
        self.init()
        header.stamp = stamp
        kind = e.kind == .started ? .started : .ended
        envID = UInt32(e.env)
        episodeIndex = e.episode
        seed = e.seed
        success = e.success
        self.return = e.episodeReturn
        reason = e.reason
        steps = UInt64(e.steps)
    }
}

extension Robosim_TaskDescription {
    init(_ t: TaskDescription) {
        self.init()
        name = t.name
        robot = t.robot
        observations = t.observations.map { q in .with { $0.name = q.name; $0.unit = q.unit } }
        environmentObservations = t.environmentObservations
        actions = t.actions.map { q in .with { $0.name = q.name; $0.unit = q.unit } }
        rewardTerms = t.rewardTerms.map { r in .with { $0.name = r.name; $0.weight = r.weight } }
        success = t.success
        actionChoices = UInt32(t.actionChoices)
    }
}
