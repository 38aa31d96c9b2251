import Foundation
import MCP
import Messaging
import StrategistKit

/// `propose_tbar_strategy`: StrategistKit's offline planner on one env's state. Reads, never commands.
extension SimSession {
    func proposeStrategy(_ args: ToolArguments) throws(ToolFailure) -> [Tool.Content] {
        let d = try link.describe()
        guard d.task.name == "tbar_push" else {
            throw ToolFailure("the T-bar planner needs a tbar_push scene; this server runs \(d.scene) (task \(d.task.name))")
        }
        let env = try checkedEnv(try args.int("env", in: 0...SimTools.maxEnvIndex, default: 0), d)
        let range = -SimTools.maxCoordinate...SimTools.maxCoordinate
        var tbar = try args.doubles("tbar", count: 3...3, in: range).map { Pose2(x: $0[0], y: $0[1], yaw: $0[2]) }
        var slot = try args.doubles("slot", count: 3...3, in: range).map { Pose2(x: $0[0], y: $0[1], yaw: $0[2]) }
        var tool = try args.doubles("tool", count: 3...3, in: range).map { SIMD3($0[0], $0[1], $0[2]) }

        // What is not given comes from the env's topics (the latest message, or the next one).
        if tbar == nil || slot == nil || tool == nil {
            try watchState(of: [env])
            let objectsTopic = "\(Names.env(env))/objects", poseTopic = "\(Names.env(env))/robot/pose"
            let objects = link.latest.latest(objectsTopic).message ?? link.latest.wait(objectsTopic, after: 0, seconds: 2)
            if let raw = objects, let m = try? Robosim_ObjectArray(serializedBytes: raw.payload) {
                for o in m.objects {
                    let q = o.pose.orientation
                    let yaw = atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
                    let pose = Pose2(x: o.pose.position.x, y: o.pose.position.y, yaw: yaw)
                    if o.name == "tbar", tbar == nil { tbar = pose }
                    if o.name == "tslot", slot == nil { slot = pose }
                }
            }
            if tool == nil {
                tool = Self.position(link.latest.latest(poseTopic).message ?? link.latest.wait(poseTopic, after: 0, seconds: 2))
            }
        }
        guard let tbar, let slot, let tool else {
            let missing = [tbar == nil ? "the T-bar" : nil, slot == nil ? "the slot" : nil, tool == nil ? "the tool" : nil].compactMap {
                $0
            }
            throw ToolFailure(
                "no pose of \(missing.joined(separator: ", ")) for env \(env) on its topics within 2 s"
                    + (d.mode == "lockstep"
                        ? " (a lockstep server publishes when envs are stepped or reset: reset_envs or step_envs first)" : "")
                    + "; or pass tbar, slot and tool")
        }
        let planner = OfflinePlanner()
        let summary = WorkspaceSummary(tbar: tbar, slot: slot, tool: tool, limits: planner.limits)
        var out: [String: Any] = [
            "env": env, "backend": "offline",
            "state": [
                "tbar": [tbar.x, tbar.y, tbar.yaw], "slot": [slot.x, slot.y, slot.yaw], "tool": [tool.x, tool.y, tool.z],
                "position_error_m": summary.positionError, "yaw_error_deg": summary.yawErrorDeg,
                "tbar_reachable": summary.tbarReachable, "slot_reachable": summary.slotReachable,
            ] as [String: Any],
        ]
        if planner.done(summary) {
            out["plan"] = NSNull()
            out["note"] = "the T-bar is at the slot already (within the planner's goal)"
        } else if let plan = planner.plan(summary) {
            out["plan"] =
                [
                    "push_side": plan.pushSide, "contact_point": plan.contactPoint, "direction": plan.direction,
                    "waypoints": plan.waypoints, "rationale": plan.rationale,
                ] as [String: Any]
        } else {
            throw ToolFailure(
                "the planner found no feasible push from this state (the T-bar may be out of the arm's reach)\n" + JSONText.render(out))
        }
        return Self.json(out)
    }
}
