import Messaging
import PluginAPI
import Synchronization
import SimEngine

/// Commands that arrive on topics (I/O threads), checked by the safety layer and held for the
/// step loop: the latest accepted action of each env stands until another comes; a robot command
/// (`joint_commands`, `ee_target`, `cmd_vel`) is handed to the env's motion generator at its next
/// pre-step, and whichever of the two came last drives the env. Rejected commands are counted
/// with their reason and never applied. Thread-safe.
final class CommandInbox: Sendable {
    private struct State {
        var actions: [[Double]?]
        var sources: [ControlSource]
        var pending: [PendingCommand?]
        var statistics: [String: Robosim_CommandStatistics] = [:]
    }
    private let state: Mutex<State>
    /// Counts accepted commands, so the step loop drains only after a change.
    private let accepted = Atomic<UInt64>(0)
    /// The action contract (size and finiteness; the world clips to the bounds).
    let actions: ActionContract
    let mode: SimServerConfiguration.Mode
    let safety: SafetyLayer

    init(envCount: Int, actions: ActionContract, mode: SimServerConfiguration.Mode,
         safety: SafetyLayer = SafetyLayer(robot: nil, workspace: nil)) {
        state = Mutex(State(actions: Array(repeating: nil, count: envCount), sources: Array(repeating: .none, count: envCount),
                            pending: Array(repeating: nil, count: envCount)))
        self.actions = actions
        self.mode = mode
        self.safety = safety
    }

    private static let lockstepReason = "lockstep mode: actions come through /sim/step"

    /// The safety layer's verdict on an action vector: nil when it may be applied, else why not.
    func rejection(ofAction data: [Double]) -> String? {
        if mode == .lockstep { return Self.lockstepReason }
        return actions.violation(data)
    }

    /// The safety layer's verdict on a robot command: nil when the motion generator may take it.
    func rejection(of command: Result<RobotCommand, CommandError>) -> String? {
        if mode == .lockstep { return Self.lockstepReason }
        switch command {
        case .failure(let error): return error.description
        case .success(let c): return safety.rejection(of: c)
        }
    }

    /// Called on an I/O thread for a message on `/env_<env>/action`.
    func submitAction(env: Int, topic: String, data: [Double]) {
        let reason = rejection(ofAction: data)
        state.withLock { s in
            count(&s, topic: topic, rejection: reason)
            guard reason == nil else { return }
            s.actions[env] = data
            s.sources[env] = .action
            accepted.add(1, ordering: .releasing)
        }
    }

    /// Called on an I/O thread for a robot command topic. `stamp`: the message header's sim time
    /// (0 or nil: unstamped).
    func submit(env: Int, topic: String, command: Result<RobotCommand, CommandError>, stamp: Double? = nil) {
        let reason = rejection(of: command)
        state.withLock { s in
            count(&s, topic: topic, rejection: reason)
            guard reason == nil, case .success(let c) = command else { return }
            s.pending[env] = PendingCommand(command: c, topic: topic, stamp: stamp.flatMap { $0 > 0 ? $0 : nil })
            s.sources[env] = .robot
            accepted.add(1, ordering: .releasing)
        }
    }

    func submit(env: Int, topic: String, point: TrajectoryMsgs_JointTrajectoryPoint) {
        submit(env: env, topic: topic, command: safety.command(from: point))
    }

    func submit(env: Int, topic: String, pose: GeometryMsgs_PoseStamped) {
        submit(env: env, topic: topic, command: safety.command(from: pose), stamp: pose.header.stamp.seconds)
    }

    func submit(env: Int, topic: String, twist: GeometryMsgs_Twist) {
        submit(env: env, topic: topic, command: safety.command(from: twist))
    }

    private func count(_ s: inout State, topic: String, rejection reason: String?) {
        var stats = s.statistics[topic] ?? Robosim_CommandStatistics.with { $0.topic = topic }
        if let reason {
            stats.rejected += 1
            stats.lastRejection = reason
        } else {
            stats.accepted += 1
        }
        s.statistics[topic] = stats
    }

    /// Commands the motion generator refused or stopped (unreachable, leaving the workspace, too
    /// fast for the given time): counted as rejections of their topic. Step loop.
    func countRejections(_ rejections: [(topic: String, reason: String)]) {
        state.withLock { s in
            for r in rejections { count(&s, topic: r.topic, rejection: r.reason) }
        }
    }

    /// Writes the latest accepted action of every env into `buffer` (env-major); an env that never
    /// got one keeps zeros. Called by the step loop before a realtime step.
    func latestActions(into buffer: inout [Double]) {
        let size = actions.size
        state.withLock { s in
            for (env, action) in s.actions.enumerated() {
                guard let action else { continue }
                for j in 0..<size { buffer[env * size + j] = action[j] }
            }
        }
    }

    /// Changes after every accepted command: while it stays the same, a drain would change nothing.
    var generation: UInt64 { accepted.load(ordering: .acquiring) }

    /// Before a realtime step: the latest actions into `buffer`, and each env's control source
    /// and new robot command into the env.
    func drain(into world: World, actions buffer: inout [Double]) {
        latestActions(into: &buffer)
        state.withLock { s in
            for i in world.envs.indices {
                if let p = s.pending[i] {
                    world.command(i, .robot(p.command, origin: p.topic, stamp: p.stamp))
                    s.pending[i] = nil
                } else if s.sources[i] == .action {
                    world.command(i, .action)
                }
            }
        }
    }

    /// Per-topic counters, sorted by topic.
    func statistics() -> [Robosim_CommandStatistics] {
        state.withLock { $0.statistics.values.sorted { $0.topic < $1.topic } }
    }
}
