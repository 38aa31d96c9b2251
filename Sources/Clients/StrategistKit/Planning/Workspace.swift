import Foundation

/// Where the strategist may move the tool: the server's workspace box, the arm's reach, and the
/// heights for pushing and for passing over the T-bar. Defaults: `Scenes/tbar_push`.
public struct WorkspaceLimits: Sendable, Codable, Equatable {
    /// The tool-tip box of the scene manifest (world frame, m).
    public var min: SIMD3<Double> = SIMD3(-0.35, -0.38, 0.755)
    public var max: SIMD3<Double> = SIMD3(0.55, 0.38, 1.35)
    /// The arm's shoulder axis (x, y) and the horizontal band the tool reaches well at push height.
    public var armBase: SIMD2<Double> = SIMD2(-0.5, 0)
    public var minReach = 0.2
    public var maxReach = 0.86
    /// Tool-tip heights: pushing (table + 2 cm) and passing over the T-bar (its top is 0.78 m).
    public var pushHeight = 0.763
    public var travelHeight = 0.82
    /// Radius of the pusher (m).
    public var toolRadius = 0.01

    public init() {}

    /// Why the tool may not go to `p`, or nil.
    public func problem(_ p: SIMD3<Double>) -> String? {
        for k in 0..<3 where p[k] < min[k] || p[k] > max[k] {
            return "(\(f(p.x)), \(f(p.y)), \(f(p.z))) is outside the workspace box"
        }
        let r = length(SIMD2(p.x, p.y) - armBase)
        if r > maxReach { return "(\(f(p.x)), \(f(p.y))) is \(f(r)) m from the arm, beyond its reach \(f(maxReach)) m" }
        if r < minReach { return "(\(f(p.x)), \(f(p.y))) is \(f(r)) m from the arm, inside its \(f(minReach)) m dead zone" }
        return nil
    }
}

func f(_ x: Double) -> String { String(format: "%.3f", x) }

/// What the strategist tells a backend about one env: the T-bar, the slot, the tool, and how
/// they relate (distances, angles, reachability, obstacles). Encoded as JSON in prompts.
public struct WorkspaceSummary: Sendable, Codable, Equatable {
    public var tbar: Pose2
    public var slot: Pose2
    public var tool: [Double]
    public var positionError: Double
    /// Slot yaw minus T-bar yaw, wrapped (rad): positive means turn the bar counter-clockwise.
    public var yawError: Double
    public var yawErrorDeg: Double
    /// Direction from the T-bar to the slot (rad, world frame).
    public var bearingToSlot: Double
    public var toolToTbar: Double
    public var tbarReachable: Bool
    public var slotReachable: Bool
    public var obstacles: [String]
    public var limits: WorkspaceLimits
    public var tolerances: [String: Double]

    public init(tbar: Pose2, slot: Pose2, tool: SIMD3<Double>, limits: WorkspaceLimits, shape: TbarShape = .standard) {
        self.tbar = tbar
        self.slot = slot
        self.tool = [tool.x, tool.y, tool.z]
        let d = slot.position - tbar.position
        positionError = length(d)
        yawError = wrapAngle(slot.yaw - tbar.yaw)
        yawErrorDeg = yawError * 180 / .pi
        bearingToSlot = atan2(d.y, d.x)
        toolToTbar = max(0, shape.signedDistance(tbar.toLocal(SIMD2(tool.x, tool.y))))
        func reachable(_ p: Pose2) -> Bool { limits.problem(SIMD3(p.x, p.y, limits.pushHeight)) == nil }
        tbarReachable = reachable(tbar)
        slotReachable = reachable(slot)
        obstacles = ["table edges at x = ±0.6 m, y = ±0.4 m", "arm base and riser around (-0.5, 0)"]
        self.limits = limits
        tolerances = ["position_m": 0.015, "yaw_deg": 5]
    }
}
