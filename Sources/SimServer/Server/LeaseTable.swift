import Foundation
import Messaging
import Synchronization
import SimEngine

/// Who may drive which envs in lockstep. A lease names a set of envs; it expires when its client
/// has not used it (step, reset, renew) for `ttl` seconds. Thread-safe.
final class LeaseTable: Sendable {
    struct Lease {
        let id: String
        let client: String
        let envs: Set<Int>
        var ttl: Double
        var lastSeen: Double
    }

    private let leases = Mutex<[String: Lease]>([:])
    let envCount: Int
    /// Lease time-to-live when the request gives none (seconds).
    static let defaultTTL = 10.0

    /// Seconds on a monotonic clock: `uptime` unless a test gives its own.
    private let clock: @Sendable () -> Double

    init(envCount: Int, clock: @escaping @Sendable () -> Double = LeaseTable.uptime) {
        self.envCount = envCount
        self.clock = clock
    }

    /// Seconds since boot (monotonic).
    @Sendable static func uptime() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Leases the given envs, or `count` free ones (lowest indices first).
    func acquire(ids: [Int], count: Int, client: String, ttl: Double) throws(ServiceError) -> Lease {
        let now = clock()
        let result: Result<Lease, ServiceError> = leases.withLock { table in
            table = table.filter { now - $0.value.lastSeen <= $0.value.ttl }
            let taken = Set(table.values.flatMap(\.envs))
            var wanted: [Int]
            if ids.isEmpty {
                guard count > 0 else { return .failure(.invalidArgument("give env_ids or a count > 0")) }
                wanted = Array((0..<envCount).filter { !taken.contains($0) }.prefix(count))
                guard wanted.count == count else {
                    return .failure(ServiceError(.resourceExhausted, "only \(wanted.count) of \(envCount) envs are free, \(count) asked"))
                }
            } else {
                wanted = ids
                if let busy = ids.first(where: { taken.contains($0) }) {
                    let owner = table.values.first { $0.envs.contains(busy) }!
                    return .failure(.failedPrecondition("env \(busy) is leased by '\(owner.client)'"))
                }
            }
            let lease = Lease(id: UUID().uuidString, client: client, envs: Set(wanted), ttl: ttl > 0 ? ttl : Self.defaultTTL, lastSeen: now)
            table[lease.id] = lease
            return .success(lease)
        }
        return try result.get()
    }

    /// Keeps a live lease alive: refreshes its last-seen time and, when `ttl` > 0, replaces its
    /// time-to-live (seconds). Unknown or expired leases are `NOT_FOUND`.
    func renew(_ id: String, ttl: Double) throws(ServiceError) -> Lease {
        let now = clock()
        let renewed: Lease? = leases.withLock { table in
            table = table.filter { now - $0.value.lastSeen <= $0.value.ttl }
            guard var lease = table[id] else { return nil }
            lease.lastSeen = now
            if ttl > 0 { lease.ttl = ttl }
            table[id] = lease
            return lease
        }
        guard let renewed else { throw .notFound("no lease '\(Names.quoted(id))' (released or expired)") }
        return renewed
    }

    /// Ends a lease. Unknown or expired leases are an error.
    func release(_ id: String) throws(ServiceError) {
        let removed = leases.withLock { $0.removeValue(forKey: id) }
        guard removed != nil else { throw .notFound("no lease '\(Names.quoted(id))' (released or expired)") }
    }

    /// Checks that `lease` may drive `ids` (and refreshes it); without a lease, that none of `ids`
    /// is leased by someone else. Returns the envs to use when `ids` is empty: the lease's, or all.
    func authorize(lease id: String, ids: [Int]) throws(ServiceError) -> [Int] {
        let now = clock()
        let result: Result<[Int], ServiceError> = leases.withLock { table in
            table = table.filter { now - $0.value.lastSeen <= $0.value.ttl }
            if id.isEmpty {
                let taken = Set(table.values.flatMap(\.envs))
                let chosen = ids.isEmpty ? (0..<envCount).filter { !taken.contains($0) } : ids
                if let busy = chosen.first(where: { taken.contains($0) }) {
                    let owner = table.values.first { $0.envs.contains(busy) }!
                    return .failure(.failedPrecondition("env \(busy) is leased by '\(owner.client)'; pass its lease"))
                }
                return .success(chosen)
            }
            guard var lease = table[id] else { return .failure(.failedPrecondition("lease '\(Names.quoted(id))' expired or unknown")) }
            if let foreign = ids.first(where: { !lease.envs.contains($0) }) {
                return .failure(.failedPrecondition("env \(foreign) is not in lease '\(Names.quoted(id))'"))
            }
            lease.lastSeen = now
            table[id] = lease
            return .success(ids.isEmpty ? lease.envs.sorted() : ids)
        }
        return try result.get()
    }

    /// Whether lease `id` is live (neither released nor expired); does not refresh it.
    func isLive(_ id: String) -> Bool {
        let now = clock()
        return leases.withLock { table in table[id].map { now - $0.lastSeen <= $0.ttl } ?? false }
    }

    /// Live leases (for describe and tests).
    var active: [Lease] {
        let now = clock()
        return leases.withLock { $0.values.filter { now - $0.lastSeen <= $0.ttl } }
    }
}
