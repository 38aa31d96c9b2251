import BuiltinPlugins
import ClientKit
import CMuJoCo
import Foundation
import PluginAPI
import Testing
@testable import SimEngine
@testable import SimServer

/// Robot commands through the safety layer and the motion generator, without sockets: the UR5
/// arm of `tbar_push` (inverse kinematics, joint limits, workspace) and the cart-pole's PD robot.
@Suite struct RobotTests {
    static func tbar(envs: Int = 1) throws -> World { try WorldTests.world("Scenes/tbar_push", envs: envs, threads: 1) }

    /// The tool site's position in env `i` (poses computed here: the scene's task reads none).
    static func tool(_ w: World, _ i: Int = 0) -> SIMD3<Double> {
        let s = w.view.sites["ee_site"]!
        mj_kinematics(w.model.pointer, w.envs[i].data)
        let d = w.envs[i].data.pointee
        return SIMD3(d.site_xpos[3 * s], d.site_xpos[3 * s + 1], d.site_xpos[3 * s + 2])
    }

    /// Hands `command` to env 0 as if it came on `topic`, then runs `steps` control steps (zero
    /// actions) and returns the refusals counted on the way.
    @discardableResult
    static func drive(_ w: World, _ command: RobotCommand, topic: String = "/env_0/ee_target", steps: Int,
                      each: (Int) -> Void = { _ in }) -> [String] {
        let env = w.envs[0]
        w.command(0, .robot(command, origin: topic))
        var refusals: [String] = []
        let zeros = [Double](repeating: 0, count: w.actionSize)
        for k in 0..<steps {
            w.step([0], actions: zeros)
            refusals += env.rejections.map(\.reason)
            env.rejections.removeAll()
            each(k)
        }
        return refusals
    }

    @Test func eeTargetIsReachedInAStraightLineWithinTheJointLimits() throws {
        let w = try Self.tbar()
        let spec = try #require(w.robot?.spec)
        let start = Self.tool(w)
        // Home: the tool tip 2 cm above the table.
        #expect(abs(start.z - 0.77) < 0.005, "home tool height \(start.z)")
        let target = start + SIMD3(0.15, 0.12, 0.05)
        var previousV = [Double](repeating: 0, count: spec.joints.count)
        var worstOffLine = 0.0
        let dt = w.configuration.controlDt
        let refusals = Self.drive(w, .endEffector(position: target, orientation: nil), steps: 150) { _ in
            let m = w.envs[0].motion!
            for (k, j) in spec.joints.enumerated() {
                #expect(abs(m.v[k]) <= j.limits.velocity + 1e-9)
                #expect(abs(m.v[k] - previousV[k]) <= j.limits.acceleration * dt + 1e-9)
                #expect(j.limits.position.contains(m.q[k]))
            }
            previousV = m.v
            // Distance of the tool from the segment start → target.
            let p = Self.tool(w), axis = target - start
            let t = min(max(((p - start) * axis).sum() / (axis * axis).sum(), 0), 1)
            let off = p - (start + t * axis)
            worstOffLine = max(worstOffLine, (off * off).sum().squareRoot())
        }
        #expect(refusals.isEmpty, "\(refusals)")
        let end = Self.tool(w), miss = end - target
        #expect((miss * miss).sum().squareRoot() < 0.002, "tool at \(end), target \(target)")
        #expect(worstOffLine < 0.01, "the tool strayed \(worstOffLine) m from its line")
    }

    @Test func unreachableAndOutsideTargetsAreRefusedAndNothingMoves() throws {
        let w = try Self.tbar()
        let start = Self.tool(w)
        let q0 = w.envs[0].motion!.q
        // Inside the workspace box, but 1.1 m from the shoulder: beyond a UR5's reach.
        let far = Self.drive(w, .endEffector(position: SIMD3(0.54, 0.37, 0.80), orientation: nil), steps: 3)
        #expect(far.count == 1 && far[0].hasPrefix("unreachable"), "\(far)")
        // Below the table top.
        let low = Self.drive(w, .endEffector(position: start - SIMD3(0, 0, 0.05), orientation: nil), steps: 3)
        #expect(low.count == 1 && low[0].contains("below the workspace"), "\(low)")
        #expect(w.envs[0].motion!.q == q0)
        // The arm did exactly what it does with no command at all.
        let idle = try Self.tbar()
        for _ in 0..<6 { idle.step([0], actions: [Double](repeating: 0, count: idle.actionSize)) }
        #expect(Self.tool(w) == Self.tool(idle))
    }

    @Test func jointCommandsRespectLimitsAndTheWorkspace() throws {
        let w = try Self.tbar()
        let spec = try #require(w.robot?.spec)
        let home = w.envs[0].motion!.q
        // Outside a joint's range.
        var bad = home
        bad[2] = 3.5
        #expect(w.robot!.safety.rejection(of: .jointPositions(bad, duration: nil))?.contains("elbow_joint position 3.5 is outside its limits") == true)
        // Too fast for the time given: 1 rad in 0.1 s.
        var quick = home
        quick[0] += 1
        let fast = Self.drive(w, .jointPositions(quick, duration: 0.1), topic: "/env_0/joint_commands", steps: 1)
        #expect(fast.first?.hasPrefix("reaching shoulder_pan_joint in 0.1 s needs 10.0 rad/s") == true, "\(fast)")
        // A target that puts the tool into the table: shoulder lift down.
        var down = home
        down[1] += 0.4
        let into = Self.drive(w, .jointPositions(down, duration: nil), topic: "/env_0/joint_commands", steps: 1)
        #expect(into.first?.hasPrefix("the tool would leave the workspace at the target") == true, "\(into)")
        // A reachable one: pan by 0.5 rad at the limits; it arrives at rest.
        var pan = home
        pan[0] += 0.5
        let ok = Self.drive(w, .jointPositions(pan, duration: nil), topic: "/env_0/joint_commands", steps: 100)
        #expect(ok.isEmpty, "\(ok)")
        #expect(w.envs[0].motion!.q == pan && w.envs[0].motion!.v.allSatisfy { $0 == 0 })
        let joint = spec.joints[0].joint
        #expect(abs(w.envs[0].data.pointee.qpos[joint.qposAddress] - pan[0]) < 0.01)
    }

    @Test func aVelocityCommandStopsBeforeTheToolLeavesTheWorkspace() throws {
        let w = try Self.tbar()
        let floor = w.robot!.workspace!.min.z
        // Shoulder lift turning down pushes the tool into the table.
        let v = [0, 0.5, 0, 0, 0, 0]
        var lowest = Double.infinity
        let refusals = Self.drive(w, .jointVelocities(v), topic: "/env_0/joint_commands", steps: 50) { _ in
            lowest = min(lowest, Self.tool(w).z)
        }
        #expect(refusals.count == 1 && refusals[0].hasPrefix("stopped: the tool would leave the workspace"), "\(refusals)")
        #expect(lowest > floor - 0.01, "the tool went down to \(lowest)")
        #expect(w.envs[0].motion!.v.allSatisfy { $0 == 0 })
    }

    @Test func aVelocityCommandBrakesBeforeTheJointLimit() throws {
        let w = try Self.tbar()
        let j = w.robot!.spec.joints[5]   // wrist_3: turning it leaves the tool tip in place
        let a = j.limits.acceleration * w.configuration.controlDt
        var previous = 0.0, refusals: [String] = []
        // Keep commanding +3 rad/s for 3 s (the command would time out after 0.5 s otherwise).
        for _ in 0..<6 {
            refusals += Self.drive(w, .jointVelocities([0, 0, 0, 0, 0, 3]), topic: "/env_0/joint_commands", steps: 25) { _ in
                let v = w.envs[0].motion!.v[5]
                #expect(abs(v - previous) <= a + 1e-9, "velocity jumped from \(previous) to \(v) at q \(w.envs[0].motion!.q[5])")
                previous = v
            }
        }
        #expect(refusals.isEmpty, "\(refusals)")
        let q = w.envs[0].motion!.q[5]
        #expect(q <= j.limits.position.upperBound && q > j.limits.position.upperBound - 0.01, "wrist_3 at \(q)")
        #expect(w.envs[0].motion!.v[5] == 0)
    }

    @Test func velocityCommandsTimeOut() throws {
        let w = try Self.tbar()
        // Pan slowly; after the 0.5 s timeout the joint comes to rest by itself.
        Self.drive(w, .jointVelocities([0.2, 0, 0, 0, 0, 0]), topic: "/env_0/joint_commands", steps: 10)
        #expect(w.envs[0].motion!.v[0] > 0.1)
        Self.drive(w, .jointVelocities([0.2, 0, 0, 0, 0, 0]), topic: "/env_0/joint_commands", steps: 0)
        w.envs[0].pendingCommand = nil
        for _ in 0..<40 { w.step([0], actions: [Double](repeating: 0, count: w.actionSize)) }
        #expect(w.envs[0].motion!.v[0] == 0)
    }

    @Test func cmdVelDrivesTheDiffDriveWithinItsLimits() throws {
        let w = try WorldTests.world("Scenes/object_tracker", envs: 1, threads: 1)
        let safety = try #require(w.robot?.safety)
        #expect(safety.rejection(of: .twist(linear: 0.2, angular: -1)) == nil)
        #expect(safety.rejection(of: .jointPositions([0], duration: nil)) == "this robot takes no joint commands")
        // Forward at 0.2 m/s for 1 s (the command stays live for 0.5 s, then the base stops).
        let follower = w.view.bodies["follower"]!
        let x0 = w.envs[0].data.pointee.xpos[3 * follower]
        Self.drive(w, .twist(linear: 0.2, angular: 0), topic: "/env_0/cmd_vel", steps: 50)
        let moved = w.envs[0].data.pointee.xpos[3 * follower] - x0
        #expect(moved > 0.07 && moved < 0.12, "moved \(moved) m")
        let obs = w.envs[0].observation
        #expect(abs(obs[4]) < 0.02, "still moving at \(obs[4]) m/s after the timeout")
    }

    @Test func cartpoleRobotTracksJointPositionsWithPD() throws {
        let w = try WorldTests.world("Scenes/cartpole", envs: 1, threads: 1)
        let spec = try #require(w.robot?.spec)
        #expect(spec.joints.map(\.name) == ["slider_to_cart"])
        let cart = spec.joints[0].joint
        var worst = 0.0, x = 0.0
        // 20 control steps (1/3 s): the pole is still up; the PD loop follows the setpoint, which
        // ramps at the default limits (1 m/s, 4 m/s²).
        let refusals = Self.drive(w, .jointPositions([0.5], duration: nil), topic: "/env_0/joint_commands", steps: 20) { _ in
            x = w.envs[0].data.pointee.qpos[cart.qposAddress]
            worst = max(worst, abs(x - w.envs[0].motion!.q[0]))
        }
        #expect(refusals.isEmpty)
        #expect(w.envs[0].episode == 0)
        #expect(x > 0.15 && worst < 0.03, "cart at \(x), worst lag \(worst) m")
    }
}

extension Result where Failure == CommandError {
    var failureText: String? {
        if case .failure(let e) = self { return e.description }
        return nil
    }
}
