import Messaging
import Synchronization

/// Commands that arrive on topics (I/O threads), checked by the safety layer, held for the step
/// loop, which applies the latest accepted one of each env at its next pre-step. Rejected
/// commands are counted with their reason and never applied. Thread-safe.
final class CommandInbox: Sendable {
    private struct State {
        var actions: [[Double]?]
        var statistics: [String: Robosim_CommandStatistics] = [:]
    }
    private let state: Mutex<State>
    let actionLow: [Double]
    let actionHigh: [Double]
    let mode: SimServerConfiguration.Mode

    init(envCount: Int, actionLow: [Double], actionHigh: [Double], mode: SimServerConfiguration.Mode) {
        state = Mutex(State(actions: Array(repeating: nil, count: envCount)))
        self.actionLow = actionLow
        self.actionHigh = actionHigh
        self.mode = mode
    }

    /// The safety layer's verdict on an action vector: nil when it may be applied, else why not.
    func rejection(ofAction data: [Double]) -> String? {
        if mode == .lockstep { return "lockstep mode: actions come through /sim/step" }
        guard data.count == actionLow.count else { return "expected \(actionLow.count) values, got \(data.count)" }
        for (i, v) in data.enumerated() {
            guard v.isFinite else { return "value \(i) is \(v); commands must be finite" }
            guard v >= actionLow[i] && v <= actionHigh[i] else {
                return "value \(i) = \(v) is outside the action bounds [\(actionLow[i]), \(actionHigh[i])]"
            }
        }
        return nil
    }

    /// Called on an I/O thread for a message on `/env_<env>/action`.
    func submitAction(env: Int, topic: String, data: [Double]) {
        record(env: env, topic: topic, action: data, rejection: rejection(ofAction: data))
    }

    /// Velocity limits of a differential drive: the manifest's `max_linear_velocity` (m/s) and
    /// `max_angular_velocity` (rad/s), which are also the task's action scales.
    struct DriveLimits: Sendable {
        let linear: Double
        let angular: Double
    }

    /// The safety layer's verdict on a `cmd_vel` twist for a differential drive.
    func rejection(ofTwist t: GeometryMsgs_Twist, limits: DriveLimits) -> String? {
        if mode == .lockstep { return "lockstep mode: actions come through /sim/step" }
        let all = [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
        guard all.allSatisfy(\.isFinite) else { return "velocities must be finite" }
        guard abs(t.linear.y) < 1e-9, abs(t.linear.z) < 1e-9, abs(t.angular.x) < 1e-9, abs(t.angular.y) < 1e-9 else {
            return "a differential drive takes linear.x and angular.z only"
        }
        guard abs(t.linear.x) <= limits.linear else { return "linear.x = \(t.linear.x) m/s exceeds the limit \(limits.linear) m/s" }
        guard abs(t.angular.z) <= limits.angular else { return "angular.z = \(t.angular.z) rad/s exceeds the limit \(limits.angular) rad/s" }
        return nil
    }

    /// Called on an I/O thread for a message on `/env_<env>/cmd_vel`: an accepted twist becomes the
    /// env's action (fractions of the limits).
    func submitTwist(env: Int, topic: String, twist: GeometryMsgs_Twist, limits: DriveLimits) {
        let reason = rejection(ofTwist: twist, limits: limits)
        record(env: env, topic: topic, action: [twist.linear.x / limits.linear, twist.angular.z / limits.angular], rejection: reason)
    }

    private func record(env: Int, topic: String, action data: [Double], rejection reason: String?) {
        state.withLock { s in
            var stats = s.statistics[topic] ?? Robosim_CommandStatistics.with { $0.topic = topic }
            if let reason {
                stats.rejected += 1
                stats.lastRejection = reason
            } else {
                stats.accepted += 1
                s.actions[env] = data
            }
            s.statistics[topic] = stats
        }
    }

    /// Writes the latest accepted action of every env into `buffer` (env-major); an env that never
    /// got one keeps zeros. Called by the step loop before a realtime step.
    func latestActions(into buffer: inout [Double]) {
        let size = actionLow.count
        state.withLock { s in
            for (env, action) in s.actions.enumerated() {
                guard let action else { continue }
                for j in 0..<size { buffer[env * size + j] = action[j] }
            }
        }
    }

    /// Per-topic counters, sorted by topic.
    func statistics() -> [Robosim_CommandStatistics] {
        state.withLock { $0.statistics.values.sorted { $0.topic < $1.topic } }
    }
}
