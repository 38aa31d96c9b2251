/// Carries out one strategy for one env, closed loop: sends the tool to each waypoint in turn as
/// an `ee_target`, moves on when the tool arrives, and gives the plan up (so the strategist
/// re-plans from the new state) after the push or when a waypoint takes too long. Times are the
/// env's sim time, so it behaves the same at any real-time factor.
public struct PushExecutor: Sendable {
    public private(set) var plan: StrategyPlan?
    public private(set) var index = 0
    private var waypointStart = 0.0
    private var lastSent = -Double.infinity
    private var from = SIMD3<Double>(repeating: 0)
    /// The tool counts as arrived within this distance (m).
    public var arrivalTolerance = 0.004
    /// The current target is sent again after this long (s): a lost message costs no more.
    public var resendPeriod = 0.5
    /// Tool speed (m/s) used to give each waypoint a time budget, plus `slack` seconds.
    public var speed = 0.25
    public var slack = 1.5

    public init() {}

    public var needsPlan: Bool { plan == nil }

    /// Forgets the plan (a new episode started).
    public mutating func reset() {
        plan = nil
        index = 0
    }

    /// Starts `plan` at sim time `time` with the tool at `tool`.
    public mutating func start(_ plan: StrategyPlan, tool: SIMD3<Double>, time: Double) {
        self.plan = plan
        index = 0
        waypointStart = time
        lastSent = -.infinity
        from = tool
    }

    /// Given the tool's position at sim time `time`: the target to publish now, if any.
    public mutating func update(tool: SIMD3<Double>, time: Double) -> SIMD3<Double>? {
        guard let plan else { return nil }
        var target = Self.point(plan.waypoints[index])
        if Self.distance(tool, target) < arrivalTolerance {
            index += 1
            guard index < plan.waypoints.count else {
                self.plan = nil
                return nil
            }
            from = target
            target = Self.point(plan.waypoints[index])
            waypointStart = time
            lastSent = -.infinity
        }
        if time - waypointStart > Self.distance(from, target) / speed + slack {
            self.plan = nil   // blocked or unreachable: re-plan from here
            return nil
        }
        guard time - lastSent >= resendPeriod else { return nil }
        lastSent = time
        return target
    }

    static func point(_ w: [Double]) -> SIMD3<Double> { SIMD3(w[0], w[1], w[2]) }
    static func distance(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { ((a - b) * (a - b)).sum().squareRoot() }
}
