import Foundation
import Logging
import Messaging

/// Server restarts: what a vector env does when its server is killed and started again (or lost).
///
/// A call fails in a way that means "the server is gone or restarted" (`isServerLoss`): no reply
/// in time, `UNAVAILABLE` (a step channel whose server process died, a socket error), or the lease
/// unknown to the server (a restarted server forgot it). Then, with `Options.reconnectTimeout` > 0:
/// 1. `/sim/describe` is polled, 0.1 s between tries doubling to 2 s, until the server answers or
///    `reconnectTimeout` seconds have passed (then the call fails with `UNAVAILABLE`, naming the
///    address and the wait);
/// 2. the server must still run the same scene, env count, mode and spaces (else `FAILED_PRECONDITION`);
///    its `instance_id` says whether it restarted (a new process) or only lost the lease (slow, or
///    the lease expired): the log says which, and the recovery is the same;
/// 3. a new lease of the same positions (the same env ids when `Options.envIDs` named them), its
///    step channel when one was used, and the reward expression in force;
/// 4. every env is reset to the start of its episode in flight: (seed, seed index, episode index)
///    as the client's seed schedule stands, so the episodes from there on are those a run without
///    the restart would have had (the interrupted episodes are played again from their start);
///    envs that never had a seeded reset get an unseeded one;
/// 5. each position's next step (the failed one, for its positions) is not sent: it returns
///    truncated (`restartReason`), reward 0, the reset observation, and the last observation seen
///    as the final one (`restartedPositions`). With `Autoreset.nextStep` no reset step follows.
/// `reconnects` and `episodesLost` (episodes with at least one step taken) count them, and a
/// warning is logged.
extension VectorEnv {
    /// Whether `error` says the server is gone or restarted, rather than refusing the call.
    public static func isServerLoss(_ error: any Error) -> Bool {
        guard let s = error as? ServiceError else { return false }
        switch s.code {
        case .unavailable, .deadlineExceeded: return true
        // How sim-server's lease table refuses a lease it does not hold.
        case .failedPrecondition, .notFound: return s.message.contains("expired or unknown")
        default: return false
        }
    }

    /// Runs a step `body` of `positions`, or answers it with the restart's truncation when those
    /// positions wait to report one; a loss in `body` reconnects and answers the same way.
    func guarded(positions: [Int]?, render: Bool, cameras: [String], _ body: () throws -> StepResult) throws -> StepResult {
        if anyPending {
            let called = positions ?? Array(0..<count)
            if called.contains(where: { pending.indices.contains($0) && pending[$0] != nil }) {
                // Positions of the call that already went on since the restart start over with the others.
                let others = called.filter { pending.indices.contains($0) && pending[$0] == nil }
                if !others.isEmpty { try resetToSchedule(others) }
                return try restartResult(called, render: render, cameras: cameras)
            }
        }
        let r: StepResult
        do { r = try body() } catch {
            try recover(after: error, in: "/sim/step")
            return try restartResult(positions ?? Array(0..<count), render: render, cameras: cameras)
        }
        trackStep(r, positions: positions)
        return r
    }

    /// The schedule after a step: episodes that ended move on to their next index.
    private func trackStep(_ r: StepResult, positions: [Int]?) {
        let o = observationSize
        if positions == nil, r.observations.count == count * o {
            lastObservations = r.observations
        } else if lastObservations.count == count * o, let positions {
            for (j, k) in positions.enumerated() where (j + 1) * o <= r.observations.count {
                for d in 0..<o { lastObservations[k * o + d] = r.observations[j * o + d] }
            }
        }
        let n = positions?.count ?? count
        for j in 0..<min(n, r.terminated.count, r.truncated.count) {
            let k = positions?[j] ?? j
            if awaitingReset[k] {
                // This step was the reset of the next episode (no movement).
                awaitingReset[k] = false
                episode[k] &+= 1
                episodeSteps[k] = 0
            } else if r.terminated[j] || r.truncated[j] {
                if autoreset == .nextStep {
                    episodeSteps[k] += 1
                    awaitingReset[k] = true
                } else {
                    episode[k] &+= 1
                    episodeSteps[k] = 0
                }
            } else {
                episodeSteps[k] += 1
            }
        }
    }

    /// The schedule after a reset the caller asked for.
    func trackReset(seed: UInt64?, seedIndices: [UInt64]?, episodes: [UInt64]?, positions: [Int]?, observations: [Double]) {
        let called = positions ?? Array(0..<count)
        let ids = envIDs
        for (j, k) in called.enumerated() where k >= 0 && k < count {
            if let seed {
                runSeed[k] = seed
                seedIndex[k] = seedIndices?[j] ?? UInt64(ids[k])
                episode[k] = episodes?[j] ?? 0
            } else {
                episode[k] &+= 1
            }
            episodeSteps[k] = 0
            awaitingReset[k] = false
            pending[k] = nil
        }
        anyPending = pending.contains { $0 != nil }
        let o = observationSize
        if positions == nil, observations.count == count * o {
            lastObservations = observations
        } else if lastObservations.count == count * o {
            for (j, k) in called.enumerated() where (j + 1) * o <= observations.count {
                for d in 0..<o { lastObservations[k * o + d] = observations[j * o + d] }
            }
        }
    }

    /// After a loss: waits for the server, checks it, leases again and resets every env to its
    /// schedule; rethrows `error` when it is not a loss or reconnection is off.
    func recover(after error: any Error, in call: String) throws {
        let wait = options.reconnectTimeout
        guard wait > 0, Self.isServerLoss(error) else { throw error }
        let address = client.server
        let old = lock.withLock { () -> Link in
            defer { link.channel = nil }
            return link
        }
        let clock = ContinuousClock()
        let noticed = clock.now
        var delay = 0.1
        var last = "\(error)"
        var d: Robosim_DescribeResponse?
        while d == nil {
            let waited = (clock.now - noticed).seconds
            let left = wait - waited
            guard left > 0 else {
                abandon()   // the server is gone: closing must not wait on a release call again
                throw ServiceError(.unavailable, String(format: "server %@ did not come back within %g s (waited %.1f s after %@ failed: %@)",
                                                        address, wait, waited, call, last))
            }
            do {
                d = try client.describe(timeout: min(max(left, 0.1), 2))
            } catch {
                last = "\(error)"
                Thread.sleep(forTimeInterval: min(delay, max(0, wait - (clock.now - noticed).seconds)))
                delay = min(2 * delay, 2)
            }
        }
        try checkSame(d!, address: address)
        // Another process answers (or one too old to say): a restart. The same one: it was slow, or
        // the lease expired; either way the episodes in flight are no longer known to be in step.
        let restarted = d!.instanceID.isEmpty || d!.instanceID != serverInstance
        // A server that did not restart (a call that timed out, a lease that expired) may still
        // hold the old lease: give it back first.
        var release = Robosim_ReleaseRequest()
        release.lease = old.lease
        _ = try? client.call("/sim/release", release, as: Robosim_Empty.self, timeout: 2)
        var request = Robosim_LeaseRequest()
        if let ids = options.envIDs { request.envIds = ids } else { request.count = UInt32(count) }
        request.clientName = options.clientName
        request.ttlS = options.ttl
        let leased: Robosim_LeaseResponse = try client.call("/sim/lease", request)
        do {
            guard leased.envIds.count == count else {
                throw ServiceError(.failedPrecondition, "server \(address) leased \(leased.envIds.count) envs after its restart; this vector holds \(count)")
            }
            let fresh = try Self.link(client: client, lease: leased, options: options)
            lock.withLock { link = fresh }
            if let reward {
                var set = Robosim_SetRewardRequest()
                set.lease = leased.lease
                set.expression = reward
                let _: Robosim_SetRewardResponse = try client.call("/sim/set_reward", set)
            }
        } catch {
            // Give the new lease back rather than hold its envs until it expires.
            var giveBack = Robosim_ReleaseRequest()
            giveBack.lease = leased.lease
            _ = try? client.call("/sim/release", giveBack, as: Robosim_Empty.self, timeout: 2)
            abandon()
            throw error
        }
        let lost = episodeSteps.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        try resetToSchedule(Array(0..<count), countingLost: false)
        serverInstance = d!.instanceID   // only now: a recovery that failed is tried again against the old id
        reconnects += 1
        if restarted { restarts += 1 }
        episodesLost += lost
        let what = restarted ? "restarted (a new server process)" : "did not restart, but its lease was lost"
        options.logger.warning(
            "server \(address) \(what) (\(call) failed: \(error)): reconnected after \(String(format: "%.1f", (clock.now - noticed).seconds)) s with a new lease of \(count) envs; \(lost) episodes in flight lost and reported truncated ('\(Self.restartReason)'); reconnects \(reconnects), episodes lost \(episodesLost)",
            metadata: ["sim.server": "\(address)", "sim.restarted": "\(restarted)", "sim.reconnects": "\(reconnects)", "sim.episodes_lost": "\(episodesLost)"])
    }

    /// Whether the server that answers is the one the vector was made for.
    private func checkSame(_ d: Robosim_DescribeResponse, address: String) throws {
        let was = description
        var differences: [String] = []
        if d.scene != was.scene { differences.append("scene '\(d.scene)' (was '\(was.scene)')") }
        if d.task.name != was.task.name { differences.append("task '\(d.task.name)' (was '\(was.task.name)')") }
        if d.envCount != was.envCount { differences.append("\(d.envCount) envs (was \(was.envCount))") }
        if d.mode != was.mode { differences.append("mode \(d.mode) (was \(was.mode))") }
        if d.observationSize != was.observationSize || d.observationNames != was.observationNames {
            differences.append("another observation space (\(d.observationSize) values)")
        }
        if d.actionSize != was.actionSize || d.actionLow != was.actionLow || d.actionHigh != was.actionHigh || d.actionNames != was.actionNames
            || d.task.actionChoices != was.task.actionChoices {
            differences.append("another action space (\(d.actionSize) values)")
        }
        guard differences.isEmpty else {
            throw ServiceError(.failedPrecondition, "server \(address) came back with \(differences.joined(separator: ", ")): this vector env cannot go on")
        }
    }

    /// Resets `positions` to the start of their episode in flight (seeded as the schedule says,
    /// over sockets) and marks them to report the restart at their next step.
    /// `countingLost`: count the positions' episodes in flight in `episodesLost`.
    func resetToSchedule(_ positions: [Int], countingLost: Bool = true) throws {
        let lease = self.lease, ids = envIDs
        // One reset per run seed (positions with none get an unseeded reset).
        var groups: [UInt64?: [Int]] = [:]
        for k in positions { groups[runSeed[k], default: []].append(k) }
        let o = observationSize
        for (seed, members) in groups.sorted(by: { ($0.key ?? 0, $0.value[0]) < ($1.key ?? 0, $1.value[0]) }) {
            var request = Robosim_ResetRequest()
            request.lease = lease
            request.envIds = members.map { ids[$0] }
            if let seed {
                request.seed = seed
                request.seedIndices = members.map { seedIndex[$0] }
                request.episodes = members.map { awaitingReset[$0] ? episode[$0] &+ 1 : episode[$0] }
            }
            let r: Robosim_ResetResponse = try client.call("/sim/reset", request)
            guard r.observations.count == members.count * o else {
                throw ServiceError(.malformed, "/sim/reset returned \(r.observations.count) observation values for \(members.count) envs")
            }
            for (j, k) in members.enumerated() {
                if seed == nil { episode[k] &+= 1 } else if awaitingReset[k] { episode[k] &+= 1 }
                if episodeSteps[k] > 0, countingLost { episodesLost += 1 }
                episodeSteps[k] = 0
                awaitingReset[k] = false
                pending[k] = Array(r.observations[(j * o)..<((j + 1) * o)])
            }
        }
        anyPending = true
    }

    /// The answer of `positions`' step after a restart: truncated, reward 0, their reset
    /// observations (and, with `render`, their images; no final images then).
    private func restartResult(_ positions: [Int], render: Bool, cameras: [String]) throws -> StepResult {
        let o = observationSize
        var result = StepResult(observations: [], rewards: Array(repeating: 0, count: positions.count),
                                terminated: Array(repeating: false, count: positions.count),
                                truncated: Array(repeating: true, count: positions.count),
                                success: Array(repeating: false, count: positions.count), finalObservations: [:],
                                images: [], finalImages: [], finalPositions: [])
        result.observations.reserveCapacity(positions.count * o)
        for (j, k) in positions.enumerated() {
            guard let reset = pending[k] else { throw ServiceError(.internal, "position \(k) has no reset observation to report") }
            result.observations += reset
            if !render, lastObservations.count == count * o {
                result.finalObservations[j] = Array(lastObservations[(k * o)..<((k + 1) * o)])
                result.finalPositions.append(j)
            }
        }
        if render { result.images = try renderCall(positions: positions, cameras: cameras) }
        for (j, k) in positions.enumerated() {
            pending[k] = nil
            result.restartedPositions.append(j)
            for d in 0..<o { if lastObservations.count == count * o { lastObservations[k * o + d] = result.observations[j * o + d] } }
        }
        result.restartedServers = [client.server]
        anyPending = pending.contains { $0 != nil }
        return result
    }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}
