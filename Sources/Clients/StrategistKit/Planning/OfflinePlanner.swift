import Foundation

/// A geometric pushing planner that needs no network: the default backend and the fallback of
/// the others. Each call plans one push from the current state; the executor re-plans after it.
///
/// - Large yaw error (over `rotateFirstDeg`), or a small one once the bar is near the slot: a
///   rotation push at one of six lever points (the stem's tip, the top bar's ends), the one whose
///   push also moves the bar most toward the slot among those the arm reaches.
/// - Otherwise a translation push through the centroid toward the slot, from the point where the
///   line through the centroid leaves the outline.
/// - The tool approaches the push's start point at push height when the straight way is clear of
///   the bar, else over it at travel height.
public struct OfflinePlanner: Sendable {
    public var limits: WorkspaceLimits
    public var shape: TbarShape
    /// Targets the planner aims at, inside the task's tolerances (1.5 cm, 5°).
    public var positionGoal = 0.006
    public var yawGoalDeg = 2.5
    /// Rotate first while the yaw error exceeds this.
    public var rotateFirstDeg = 12.0
    /// Gap between the tool and the bar at the start of a push, and the longest push (m).
    public var approachGap = 0.025
    public var maxPush = 0.08

    public init(limits: WorkspaceLimits = WorkspaceLimits(), shape: TbarShape = .standard) {
        self.limits = limits
        self.shape = shape
    }

    /// Lever points for rotation: body-frame contact, body-frame push direction, face name.
    static let levers: [(point: SIMD2<Double>, push: SIMD2<Double>, face: String)] = [
        (SIMD2(-0.025, -0.105), SIMD2(1, 0), "stem_left"),          // counter-clockwise
        (SIMD2(0.08, 0.017857), SIMD2(0, 1), "top_right_front"),
        (SIMD2(-0.08, 0.067857), SIMD2(0, -1), "top_left_back"),
        (SIMD2(0.025, -0.105), SIMD2(-1, 0), "stem_right"),         // clockwise
        (SIMD2(-0.08, 0.017857), SIMD2(0, 1), "top_left_front"),
        (SIMD2(0.08, 0.067857), SIMD2(0, -1), "top_right_back"),
    ]

    /// True when the T-bar is within the planner's own goal (tighter than the task's tolerances).
    public func done(_ s: WorkspaceSummary) -> Bool {
        s.positionError <= positionGoal && abs(s.yawErrorDeg) <= yawGoalDeg
    }

    /// One push for the state in `s`, or nil when the T-bar is at the goal or no push is feasible.
    public func plan(_ s: WorkspaceSummary) -> StrategyPlan? {
        if done(s) { return nil }
        let tool = SIMD3(s.tool[0], s.tool[1], s.tool[2])
        let yawFar = abs(s.yawErrorDeg) > rotateFirstDeg
        let nearSlot = s.positionError <= max(positionGoal, 0.012)
        var candidates: [StrategyPlan] = []
        if yawFar || (nearSlot && abs(s.yawErrorDeg) > yawGoalDeg) {
            candidates = rotations(s, tool: tool) + translations(s, tool: tool)
        } else {
            candidates = translations(s, tool: tool) + rotations(s, tool: tool)
        }
        return candidates.first { $0.problems(tbar: s.tbar, limits: limits, shape: shape, tool: tool).isEmpty }
    }

    /// Pushes through the centroid: straight toward the slot first, then at growing angles from
    /// that line (when the arm cannot reach behind the bar, a slanted push still closes the gap).
    func translations(_ s: WorkspaceSummary, tool: SIMD3<Double>) -> [StrategyPlan] {
        let toSlot = s.slot.position - s.tbar.position
        guard length(toSlot) > 1e-9 else { return [] }
        let heading = atan2(toSlot.y, toSlot.x)
        var out: [StrategyPlan] = []
        for deviation in [0.0, 20, -20, 40, -40, 60, -60] {
            let a = heading + deviation * .pi / 180
            let d = SIMD2(cos(a), sin(a))
            let local = s.tbar.toLocal(s.tbar.position - d) - s.tbar.toLocal(s.tbar.position)   // -d in the body frame
            guard let exit = shape.lastExit(from: .zero, along: local) else { continue }
            let contact = s.tbar.toWorld(exit)
            // How far along d the bar should go: its projection of the remaining gap.
            let distance = min(maxPush, max(0.004, dot(toSlot, d)))
            if let plan = push(contact: contact, direction: d, length: distance, tool: tool, tbar: s.tbar, gap: gap(s),
                               side: "translate:\(face(exit))",
                               why: String(format: "the T-bar is %.3f m from the slot (yaw error %.1f°): push %.3f m through its centroid, %.0f° off the line to the slot",
                                           s.positionError, s.yawErrorDeg, distance, deviation)) {
                out.append(plan)
            }
        }
        return out
    }

    /// The gap before first touch: smaller for the fine pushes near the slot.
    func gap(_ s: WorkspaceSummary) -> Double { s.positionError < 0.04 ? approachGap * 0.6 : approachGap }

    /// Rotation pushes that turn the bar toward the slot's yaw, best first.
    func rotations(_ s: WorkspaceSummary, tool: SIMD3<Double>) -> [StrategyPlan] {
        let ccw = s.yawError > 0
        let toSlot = s.slot.position - s.tbar.position
        let goal = length(toSlot) > 1e-9 ? toSlot / length(toSlot) : SIMD2<Double>(0, 0)
        var scored: [(Double, StrategyPlan)] = []
        for lever in Self.levers {
            let torque = cross(lever.point, lever.push)
            guard (torque > 0) == ccw else { continue }
            let contact = s.tbar.toWorld(lever.point)
            let d = s.tbar.rotate(lever.push)
            // Arc the contact travels for the remaining angle, capped: re-planning corrects the rest.
            let arc = abs(torque) * abs(s.yawError)
            let distance = min(maxPush * 0.75, max(0.01, arc))
            guard let plan = push(contact: contact, direction: d, length: distance, tool: tool, tbar: s.tbar, gap: gap(s),
                                  side: "\(ccw ? "rotate_ccw" : "rotate_cw"):\(lever.face)",
                                  why: String(format: "yaw error %.1f°: push the %@ %.3f m to turn the T-bar %@", s.yawErrorDeg, lever.face,
                                              distance, ccw ? "counter-clockwise" : "clockwise"))
            else { continue }
            let travel = length(SIMD2(tool.x, tool.y) - (contact - d * gap(s)))
            scored.append((dot(d, goal) - 0.5 * travel, plan))
        }
        return scored.sorted { $0.0 > $1.0 }.map(\.1)
    }

    /// Waypoints for a push of `length` beyond first touch, from `tool`: to the start point (over the
    /// bar when the straight way at push height is blocked), then the push.
    func push(contact: SIMD2<Double>, direction d: SIMD2<Double>, length pushLength: Double, tool: SIMD3<Double>, tbar: Pose2,
              gap: Double, side: String, why: String) -> StrategyPlan? {
        let r = limits.toolRadius
        let start = contact - d * (r + gap)
        let end = contact + d * (pushLength - r)
        let (h, travel) = (limits.pushHeight, limits.travelHeight)
        let here = SIMD2(tool.x, tool.y)
        var points: [[Double]] = []
        let low = tool.z < travel - 0.02
        let clear = shape.distance(fromSegment: here, start, pose: tbar) > r + 0.006
        if low && clear {
            points.append([start.x, start.y, h])
        } else {
            if low { points.append([here.x, here.y, travel]) }
            points.append([start.x, start.y, travel])
            points.append([start.x, start.y, h])
        }
        points.append([end.x, end.y, h])
        return StrategyPlan(pushSide: side, contactPoint: [contact.x, contact.y], direction: [d.x, d.y], waypoints: points, rationale: why)
    }

    /// A name for the face a body-frame outline point lies on.
    func face(_ p: SIMD2<Double>) -> String {
        if p.y > 0.0675 { return "top_back" }
        if p.y > 0.017 && abs(p.x) > 0.0999 { return p.x > 0 ? "top_right_end" : "top_left_end" }
        if p.y > 0.017 && abs(p.y - 0.017857) < 0.001 && abs(p.x) > 0.025 { return p.x > 0 ? "top_right_front" : "top_left_front" }
        if p.y < -0.132 { return "stem_end" }
        return p.x > 0 ? "stem_right" : "stem_left"
    }
}
