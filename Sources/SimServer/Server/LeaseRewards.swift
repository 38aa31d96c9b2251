import Messaging
import RewardLanguage
import Synchronization

/// Reward expressions by lease (`/sim/set_reward`): a lease's steps use its expression, every
/// other step the task's own reward. An expression ends with its lease (release removes it; one of
/// a lease that expired is never used again, since no step names that lease, and is dropped at the
/// next change), so the table holds at most the live leases plus those that expired since. Thread-safe.
final class LeaseRewards: Sendable {
    private let table = Mutex<[String: RewardExpression]>([:])

    /// The expression of `lease` (nil: the task's reward).
    func expression(for lease: String) -> RewardExpression? {
        lease.isEmpty ? nil : table.withLock { $0[lease] }
    }

    /// Sets (or with nil clears) `lease`'s expression, and drops those of leases that ended.
    func set(_ expression: RewardExpression?, for lease: String, leases: LeaseTable) {
        table.withLock { t in
            t = t.filter { leases.isLive($0.key) }
            t[lease] = expression
        }
    }

    /// Forgets `lease`'s expression (it was released).
    func remove(_ lease: String) {
        _ = table.withLock { $0.removeValue(forKey: lease) }
    }
}
