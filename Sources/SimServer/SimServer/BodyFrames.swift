import CMuJoCo
import Messaging
import PluginAPI

/// Builds the pose messages of an env from its MuJoCo data: every body in the world frame (tf),
/// the robot body (pose, odometry) and the task's object bodies (with twist). Step loop thread.
struct BodyFrames {
    /// (index, name) of every body but the world, in model order.
    let bodies: [(index: Int, name: String)]
    /// The body `/env_i/robot/pose` and `/env_i/odom` report (a mobile base, or the task's choice).
    let robot: (index: Int, name: String)?
    /// The arm's tool site, which `/env_i/robot/pose` reports when the robot has one.
    let toolSite: (index: Int, name: String)?
    let objects: [(index: Int, name: String)]
    let mobile: Bool
    let jointNames: [String]
    let joints: [ModelView.Joint]

    init(world: World) {
        let view = world.view
        let spec = world.robot?.spec
        bodies = view.bodies.filter { $0.value > 0 }.map { ($0.value, $0.key) }.sorted { $0.index < $1.index }
        robot = (spec?.baseBody ?? world.task.robotBody).flatMap { name in view.bodies[name].map { ($0, name) } }
        toolSite = spec?.endEffectorSite.flatMap { name in view.sites[name].map { ($0, name) } }
        objects = world.task.objectBodies.compactMap { name in view.bodies[name].map { ($0, name) } }
        mobile = spec?.drive != nil && robot != nil
        let named = view.joints.filter { $0.value.kind == .hinge || $0.value.kind == .slide }.sorted { $0.value.index < $1.value.index }
        jointNames = named.map(\.key)
        joints = named.map(\.value)
    }

    func jointState(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_JointState {
        let v = env.view(world.model)
        var js = SensorMsgs_JointState()
        js.header.stamp = stamp
        js.name = jointNames
        js.position = joints.map { v.qpos[$0.qposAddress] }
        js.velocity = joints.map { v.qvel[$0.dofAddress] }
        return js
    }

    func pose(_ env: Env, _ b: Int) -> GeometryMsgs_Pose {
        let d = env.data
        var p = GeometryMsgs_Pose()
        p.position.x = d.pointee.xpos[3 * b]
        p.position.y = d.pointee.xpos[3 * b + 1]
        p.position.z = d.pointee.xpos[3 * b + 2]
        p.orientation.w = d.pointee.xquat[4 * b]
        p.orientation.x = d.pointee.xquat[4 * b + 1]
        p.orientation.y = d.pointee.xquat[4 * b + 2]
        p.orientation.z = d.pointee.xquat[4 * b + 3]
        return p
    }

    /// Linear and angular velocity of body `b` in the world frame.
    func twist(_ env: Env, _ world: World, _ b: Int) -> GeometryMsgs_Twist {
        var v = [Double](repeating: 0, count: 6)
        mj_objectVelocity(world.model.pointer, env.data, Int32(mjOBJ_BODY.rawValue), Int32(b), &v, 0)
        var t = GeometryMsgs_Twist()
        (t.angular.x, t.angular.y, t.angular.z) = (v[0], v[1], v[2])
        (t.linear.x, t.linear.y, t.linear.z) = (v[3], v[4], v[5])
        return t
    }

    func transforms(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> Tf2Msgs_TFMessage {
        var m = Tf2Msgs_TFMessage()
        m.transforms = bodies.map { body in
            let p = pose(env, body.index)
            var t = GeometryMsgs_TransformStamped()
            t.header.stamp = stamp
            t.header.frameID = "world"
            t.childFrameID = body.name
            t.transform.translation.x = p.position.x
            t.transform.translation.y = p.position.y
            t.transform.translation.z = p.position.z
            t.transform.rotation = p.orientation
            return t
        }
        return m
    }

    func robotPose(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> GeometryMsgs_PoseStamped {
        var m = GeometryMsgs_PoseStamped()
        m.header.stamp = stamp
        m.header.frameID = "world"
        if let toolSite {
            let d = env.data, s = toolSite.index
            m.pose.position.x = d.pointee.site_xpos[3 * s]
            m.pose.position.y = d.pointee.site_xpos[3 * s + 1]
            m.pose.position.z = d.pointee.site_xpos[3 * s + 2]
            var q = [Double](repeating: 0, count: 4)
            q.withUnsafeMutableBufferPointer { mju_mat2Quat($0.baseAddress, d.pointee.site_xmat + 9 * s) }
            (m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z) = (q[0], q[1], q[2], q[3])
        } else if let robot {
            m.pose = pose(env, robot.index)
        }
        return m
    }

    /// Whether `/env_i/robot/pose` has something to report.
    var hasRobotPose: Bool { toolSite != nil || robot != nil }

    func odometry(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> NavMsgs_Odometry {
        var m = NavMsgs_Odometry()
        m.header.stamp = stamp
        m.header.frameID = "world"
        guard let robot else { return m }
        m.childFrameID = robot.name
        m.pose.pose = pose(env, robot.index)
        m.twist.twist = twist(env, world, robot.index)
        return m
    }

    func objectArray(_ env: Env, _ world: World, _ stamp: BuiltinInterfaces_Time) -> Robosim_ObjectArray {
        var m = Robosim_ObjectArray()
        m.header.stamp = stamp
        m.header.frameID = "world"
        m.objects = objects.map { o in
            var s = Robosim_ObjectState()
            s.name = o.name
            s.pose = pose(env, o.index)
            s.twist = twist(env, world, o.index)
            return s
        }
        return m
    }
}
