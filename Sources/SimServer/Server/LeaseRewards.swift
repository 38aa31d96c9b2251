import Messaging
import RewardLanguage
import SimEngine
import Synchronization

/// How a lease's reward and the task's reward terms behaved over an interval of steps
/// (`/sim/reward_statistics`): per value (the task's terms, then the reward given, then success),
/// the mean, min and max over the env-steps taken. The mean is kept as a running mean, so no sum
/// of large values overflows; a value that is not finite counts as 0 (NaN) or the largest finite
/// value of its sign.
struct RewardStatistics: Sendable {
    var steps = 0
    var mean: [Double], min: [Double], max: [Double]

    init(count: Int) {
        mean = [Double](repeating: 0, count: count)
        min = [Double](repeating: .infinity, count: count)
        max = [Double](repeating: -.infinity, count: count)
    }

    /// Adds value `k` of the step counted last (`steps` already counts it).
    mutating func add(_ k: Int, _ value: Double) {
        let x = value.isFinite ? value : value.isNaN ? 0 : value > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude
        mean[k] += x / Double(steps) - mean[k] / Double(steps)
        min[k] = Swift.min(min[k], x)
        max[k] = Swift.max(max[k], x)
    }
}

/// A lease's reward: its expression (`/sim/set_reward`; nil: the task's weighted sum) and the
/// statistics of its steps since they were last taken. Thread-safe.
final class LeaseReward: Sendable {
    let expression: RewardExpression?
    private let statistics: Mutex<RewardStatistics>
    private let terms: Int

    init(expression: RewardExpression?, terms: Int, carrying previous: LeaseReward? = nil) {
        self.expression = expression
        self.terms = terms
        statistics = Mutex(previous?.takeStatistics() ?? RewardStatistics(count: terms + 2))
    }

    /// Adds the step the envs `ids` just took. An env whose step only started its next episode
    /// (next-step autoreset: no physics, reward 0), or diverged, is left out.
    func record(_ ids: [Int], of envs: [Env]) {
        statistics.withLock { s in
            for i in ids where envs[i].measured {
                let env = envs[i]
                s.steps += 1
                for (k, t) in env.terms.enumerated() where k < terms { s.add(k, t) }
                s.add(terms, env.reward)
                s.add(terms + 1, env.success ? 1 : 0)
            }
        }
    }

    /// The statistics so far; a new interval starts.
    func takeStatistics() -> RewardStatistics {
        statistics.withLock { s in
            defer { s = RewardStatistics(count: terms + 2) }
            return s
        }
    }
}

/// Rewards by lease (`/sim/set_reward`, `/sim/reward_statistics`): a lease's steps use its
/// expression, every other step the task's own reward. An entry ends with its lease (release
/// removes it; one of a lease that expired is never used again, since no step names that lease,
/// and is dropped at the next insertion), so the table holds at most the live leases plus those
/// that expired since. Thread-safe.
final class LeaseRewards: Sendable {
    private let table = Mutex<[String: LeaseReward]>([:])
    let terms: Int

    init(terms: Int) { self.terms = terms }

    /// The reward of `lease` (nil for the empty lease: the task's reward, no statistics), made on
    /// its first use.
    func reward(for lease: String, leases: LeaseTable) -> LeaseReward? {
        guard !lease.isEmpty else { return nil }
        return table.withLock { t in
            if let r = t[lease] { return r }
            let r = LeaseReward(expression: nil, terms: terms)
            insert(r, for: lease, into: &t, leases: leases)
            return r
        }
    }

    /// Sets (or with nil clears) `lease`'s expression, keeping its statistics.
    func set(_ expression: RewardExpression?, for lease: String, leases: LeaseTable) {
        table.withLock { t in
            insert(LeaseReward(expression: expression, terms: terms, carrying: t[lease]), for: lease, into: &t, leases: leases)
        }
    }

    private func insert(_ r: LeaseReward, for lease: String, into t: inout [String: LeaseReward], leases: LeaseTable) {
        t = t.filter { leases.isLive($0.key) }
        t[lease] = r
    }

    /// Forgets `lease`'s reward (it was released).
    func remove(_ lease: String) {
        _ = table.withLock { $0.removeValue(forKey: lease) }
    }
}
