import CMuJoCo
import PluginAPI

/// A pose in the world frame: position (m) and orientation as a unit quaternion (w, x, y, z).
package struct WorldPose: Sendable, Equatable {
    package var position: SIMD3<Double>
    package var orientation: SIMD4<Double>
}

/// A velocity in the world frame: linear (m/s) and angular (rad/s).
package struct WorldTwist: Sendable, Equatable {
    package var linear: SIMD3<Double>
    package var angular: SIMD3<Double>
}

/// Reads the frames of an env from its MuJoCo data as plain values: every body in the world frame
/// (tf), the robot body or tool (pose, odometry), the task's object bodies (with twist) and the
/// named hinge and slide joints (joint states). Poses need the env's kinematics computed
/// (`World.computePoses`). Step loop thread.
package struct BodyFrames {
    /// (index, name) of every body but the world, in model order.
    package let bodies: [(index: Int, name: String)]
    /// The body `/env_i/robot/pose` and `/env_i/odom` report (a mobile base, or the task's choice).
    package let robot: (index: Int, name: String)?
    /// The arm's tool site, which `/env_i/robot/pose` reports when the robot has one.
    package let toolSite: (index: Int, name: String)?
    package let objects: [(index: Int, name: String)]
    package let mobile: Bool
    package let jointNames: [String]
    package let joints: [ModelView.Joint]

    package init(world: World) {
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

    /// Whether `/env_i/robot/pose` has something to report.
    package var hasRobotPose: Bool { toolSite != nil || robot != nil }

    /// Positions (rad or m) and velocities of the named hinge and slide joints, in `jointNames` order.
    package func jointState(_ env: Env) -> (positions: [Double], velocities: [Double]) {
        let d = env.data
        return (joints.map { d.pointee.qpos[$0.qposAddress] }, joints.map { d.pointee.qvel[$0.dofAddress] })
    }

    /// The world pose of body `b`.
    package func pose(_ env: Env, _ b: Int) -> WorldPose {
        let d = env.data
        return WorldPose(position: SIMD3(d.pointee.xpos[3 * b], d.pointee.xpos[3 * b + 1], d.pointee.xpos[3 * b + 2]),
                         orientation: SIMD4(d.pointee.xquat[4 * b], d.pointee.xquat[4 * b + 1], d.pointee.xquat[4 * b + 2], d.pointee.xquat[4 * b + 3]))
    }

    /// Linear and angular velocity of body `b` in the world frame.
    package func twist(_ env: Env, _ world: World, _ b: Int) -> WorldTwist {
        var v = [Double](repeating: 0, count: 6)
        mj_objectVelocity(world.model.pointer, env.data, Int32(mjOBJ_BODY.rawValue), Int32(b), &v, 0)
        return WorldTwist(linear: SIMD3(v[3], v[4], v[5]), angular: SIMD3(v[0], v[1], v[2]))
    }

    /// The robot's pose: its tool site when it has one, else its body; nil without either.
    package func robotPose(_ env: Env) -> WorldPose? {
        if let toolSite {
            let d = env.data, s = toolSite.index
            var q = [Double](repeating: 0, count: 4)
            q.withUnsafeMutableBufferPointer { mju_mat2Quat($0.baseAddress, d.pointee.site_xmat + 9 * s) }
            return WorldPose(position: SIMD3(d.pointee.site_xpos[3 * s], d.pointee.site_xpos[3 * s + 1], d.pointee.site_xpos[3 * s + 2]),
                             orientation: SIMD4(q[0], q[1], q[2], q[3]))
        }
        return robot.map { pose(env, $0.index) }
    }
}
