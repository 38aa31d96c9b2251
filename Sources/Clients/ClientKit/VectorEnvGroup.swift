import Dispatch
import Foundation
import Messaging
import Synchronization

/// One vector of envs spread over several servers: one learner, many simulators (the distributed
/// rollout pattern). Each server (a member) holds a contiguous run of global env indices, its
/// lease steps its share of every batch, and the members step at once (as many at a time as there
/// are cores).
///
/// Seeded resets pass each env's global index as its seed index (`ResetRequest.seed_indices`), so
/// the episodes, and a trainer's curves, do not depend on how the envs are spread: two servers of
/// 8 envs give what one server of 16 gives.
///
/// A member whose server restarts is taken back by its own `VectorEnv` (`Options.reconnectTimeout`):
/// the step returns its envs truncated (`StepResult.restartedPositions`) and the vector goes on.
/// A member whose server stops answering (killed, cut off, or not back within the reconnect timeout: no reply in time, its process
/// gone, or our lease unknown to it) is dropped: `step` throws `MembersLost` naming it, and the
/// vector goes on with the others (`count`, `globalIndices` shrink). Any other refusal is the
/// caller's and is rethrown, the member kept. `recover` tries the lost members again, backing off
/// from 5 s to a minute between attempts, and takes a new lease on a server that answers.
public final class VectorEnvGroup: @unchecked Sendable {
    // Invariant: one owner thread makes every call; `renewLeases` alone may run on another thread,
    // and reads the members' vectors through the `state` lock.
    /// A server's share of the vector.
    public struct Member: Sendable {
        public let address: String
        /// Envs leased on it, holding global indices `offset ..< offset + count`.
        public let count: Int
        public let offset: Int
    }

    /// Members that stopped answering during a call; the vector now holds the other envs.
    public struct MembersLost: Error, CustomStringConvertible {
        public let addresses: [String]
        public let errors: [String]
        /// In a step: what the members that answered returned (their envs did step), in the new
        /// `globalIndices` order.
        public var survivors: VectorEnv.StepResult?
        public var description: String {
            zip(addresses, errors).map { "server \($0) lost: \($1)" }.joined(separator: "; ")
        }
    }

    /// Envs that joined again (`recover`): their global indices and first observations.
    public struct Recovered {
        public let addresses: [String]
        public let globalIndices: [Int]
        public let observations: [Double]
        public let images: [SensorMsgs_Image]
    }

    public let members: [Member]
    /// Every env of the vector, live or not.
    public let total: Int
    public let description: Robosim_DescribeResponse
    public let observationSize: Int, actionSize: Int, actionChoices: Int
    public let observationNames: [String], actionNames: [String]
    public let actionLow: [Double], actionHigh: [Double]
    /// Seconds before the first attempt to take a lost member back; each failed attempt doubles
    /// its wait, up to `maxRetryInterval`.
    static let retryInterval = 5.0, maxRetryInterval = 60.0

    /// The members' vectors (nil: lost). Written by the owner's thread only; read by it and by
    /// `renewLeases` from a keeper thread.
    private let state: Mutex<[VectorEnv?]>
    private var envs: [VectorEnv?] {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
    private var nextAttempt: [Date]
    private var backoff: [Double]
    private let options: VectorEnv.Options
    private let timeout: Double
    /// CURVE keys for every server (nil: plaintext).
    public let security: ClientSecurity?
    private var reward: String?

    /// Leases `counts[k]` envs on the server at `addresses[k]`, in that order of global indices.
    /// Every server must answer and run the same task.
    /// `security`: CURVE keys for every server (nil: plaintext).
    public init(addresses: [String], counts: [Int], options: VectorEnv.Options = .init(), timeout: Double = 30,
                security: ClientSecurity? = nil) throws {
        guard !addresses.isEmpty, addresses.count == counts.count, counts.allSatisfy({ $0 >= 1 }) else {
            throw ServiceError(.invalidArgument, "a vector env group needs one count (at least 1) per server")
        }
        guard Set(addresses).count == addresses.count else { throw ServiceError(.invalidArgument, "a server is named twice") }
        var offset = 0
        var members: [Member] = []
        for (a, c) in zip(addresses, counts) {
            members.append(Member(address: a, count: c, offset: offset))
            offset += c
        }
        self.members = members
        total = offset
        self.options = options
        self.timeout = timeout
        self.security = security
        var opened: [VectorEnv] = []
        do {
            for m in members { opened.append(try Self.open(m, options: options, timeout: timeout, security: security)) }
        } catch {
            for e in opened { e.close() }
            throw error
        }
        let first = opened[0]
        for (m, e) in zip(members, opened).dropFirst() {
            guard e.description.task.name == first.description.task.name, e.observationSize == first.observationSize,
                  e.actionSize == first.actionSize, e.actionChoices == first.actionChoices else {
                for e in opened { e.close() }
                throw ServiceError(.failedPrecondition, "server \(m.address) runs task '\(e.description.task.name)' (\(e.observationSize) observations, \(e.actionSize) actions); \(members[0].address) runs '\(first.description.task.name)' (\(first.observationSize), \(first.actionSize))")
            }
        }
        state = Mutex(opened)
        nextAttempt = members.map { _ in .distantPast }
        backoff = members.map { _ in Self.retryInterval }
        description = first.description
        (observationSize, actionSize, actionChoices) = (first.observationSize, first.actionSize, first.actionChoices)
        (observationNames, actionNames, actionLow, actionHigh) = (first.observationNames, first.actionNames, first.actionLow, first.actionHigh)
    }

    /// `total` envs over `addresses`, as evenly as possible (the first servers take the remainder).
    public convenience init(addresses: [String], total: Int, options: VectorEnv.Options = .init(), timeout: Double = 30,
                            security: ClientSecurity? = nil) throws {
        let s = max(1, addresses.count)
        try self.init(addresses: addresses, counts: (0..<s).map { total / s + ($0 < total % s ? 1 : 0) }, options: options, timeout: timeout,
                      security: security)
    }

    private static func open(_ m: Member, options: VectorEnv.Options, timeout: Double, security: ClientSecurity?) throws -> VectorEnv {
        var o = options
        o.count = m.count
        let client = try ServiceClient(server: m.address, timeout: timeout, security: security)
        return try VectorEnv(client: client, options: o)
    }

    deinit { close() }

    /// Live envs.
    public var count: Int { zip(members, envs).reduce(0) { $0 + ($1.1 == nil ? 0 : $1.0.count) } }
    /// The global indices of the live envs, in the order of every call's rows.
    public var globalIndices: [Int] { zip(members, envs).flatMap { m, e in e == nil ? [] : Array(m.offset..<(m.offset + m.count)) } }
    /// The servers currently lost.
    public var lost: [String] { zip(members, envs).compactMap { $1 == nil ? $0.address : nil } }
    /// Reconnections of the live members after their server restarted (see `VectorEnv+Recovery.swift`).
    public var reconnects: Int { live.reduce(0) { $0 + $1.1.reconnects } }
    /// Episodes the live members lost in flight to server restarts.
    public var episodesLost: Int { live.reduce(0) { $0 + $1.1.episodesLost } }
    /// The live envs' transports.
    public var transport: VectorEnv.Transport { live.allSatisfy { $0.1.transport == .shm } ? .shm : .socket }
    /// The server seconds of the last step through step channels: the slowest member's (they step at once).
    public var lastServerSeconds: Double? { live.compactMap { $0.1.lastServerSeconds }.max() }

    private var live: [(Member, VectorEnv)] { zip(members, envs).compactMap { m, e in e.map { (m, $0) } } }

    /// Resets every live env; with a seed, env g's episodes follow (seed, g) for its global index g.
    public func reset(seed: UInt64? = nil, render: Bool = false, cameras: [String] = []) throws -> (observations: [Double], images: [SensorMsgs_Image]) {
        let parts = try perMember { _, m, e in try Self.reset(e, m, seed: seed, render: render, cameras: cameras) }.get()
        return (parts.flatMap(\.observations), parts.flatMap(\.images))
    }

    private static func reset(_ e: VectorEnv, _ m: Member, seed: UInt64?, render: Bool, cameras: [String]) throws
        -> (observations: [Double], images: [SensorMsgs_Image]) {
        try e.reset(seed: seed, seedIndices: seed == nil ? nil : (m.offset..<(m.offset + m.count)).map(UInt64.init), render: render, cameras: cameras)
    }

    /// One step of every live env with its actions (`actionSize` per env, in `globalIndices`
    /// order). Throws `MembersLost` when a server stopped answering: nothing of that call is
    /// returned, the other members did step, and the vector goes on without the lost ones.
    public func step(actions: [Double], render: Bool = false, cameras: [String] = []) throws -> VectorEnv.StepResult {
        guard actions.count == count * actionSize else {
            throw ServiceError(.invalidArgument, "expected \(count * actionSize) actions (\(count) envs x \(actionSize)), got \(actions.count)")
        }
        let starts = live.reduce(into: [0]) { $0.append($0.last! + $1.0.count) }
        let size = actionSize
        let outcome = try perMember { k, _, e in
            let from = starts[k] * size, to = from + e.count * size
            return try e.step(actions: Array(actions[from..<to]), render: render, cameras: cameras)
        }
        let parts = outcome.values
        // Rows of the members that answered, packed in their (new) order.
        let rows = outcome.values.map { $0.rewards.count }.reduce(into: [0]) { $0.append($0.last! + $1) }
        var result = VectorEnv.StepResult(observations: [], rewards: [], terminated: [], truncated: [], success: [], finalObservations: [:],
                                          images: [], finalImages: [], finalPositions: [])
        for (k, r) in parts.enumerated() {
            result.observations += r.observations
            result.rewards += r.rewards
            result.terminated += r.terminated
            result.truncated += r.truncated
            result.success += r.success
            result.images += r.images
            result.finalImages += r.finalImages
            result.restartedPositions += r.restartedPositions.map { rows[k] + $0 }
            result.restartedServers += r.restartedServers
            for p in r.finalPositions {
                result.finalPositions.append(rows[k] + p)
                result.finalObservations[rows[k] + p] = r.finalObservations[p]
            }
        }
        if var lost = outcome.lost {
            lost.survivors = result
            throw lost
        }
        return result
    }

    /// Images of the current states of `positions` (nil: all live envs) from `cameras`.
    public func render(positions: [Int]? = nil, cameras: [String] = []) throws -> [SensorMsgs_Image] {
        let wanted = positions ?? Array(0..<count)
        let starts = live.reduce(into: [0]) { $0.append($0.last! + $1.0.count) }
        if let bad = wanted.first(where: { $0 < 0 || $0 >= count }) { throw ServiceError(.invalidArgument, "position \(bad) is outside the vector's \(count) envs") }
        let parts = try perMember { k, _, e in
            let mine = wanted.filter { $0 >= starts[k] && $0 < starts[k + 1] }
            return (mine, mine.isEmpty ? [] : try e.render(positions: mine.map { $0 - starts[k] }, cameras: cameras))
        }.get()
        // Back in the order asked for: each position's images (one per camera image) together.
        var byPosition: [Int: ArraySlice<SensorMsgs_Image>] = [:]
        for (mine, images) in parts where !mine.isEmpty {
            let each = images.count / mine.count
            for (j, p) in mine.enumerated() { byPosition[p] = images[(j * each)..<((j + 1) * each)] }
        }
        return wanted.flatMap { byPosition[$0] ?? [] }
    }

    /// Sets the reward expression of every member's lease, and of leases taken on recovery.
    @discardableResult
    public func setReward(_ expression: String) throws -> [String] {
        let names = try perMember { _, _, e in try e.setReward(expression) }.get()
        reward = expression
        return names.first ?? []
    }

    /// The reward statistics since the last call, over the live members that answer within 2 s
    /// (steps-weighted). A member that does not answer is left out, not dropped: losing servers is
    /// for `step` to find.
    public func rewardStatistics() -> VectorEnv.RewardStatistics {
        let parts = (try? perMember { _, _, e in try? e.rewardStatistics(timeout: 2) }.values) ?? []
        return VectorEnv.RewardStatistics.combined(parts.compactMap { $0 })
    }

    /// Keeps the live leases alive. Thread-safe with respect to the members (each renewal is one call).
    public func renewLeases() {
        for (_, e) in live { try? e.renewLease() }
    }

    /// Tries the lost members whose retry time has come: a server that answers gets a new lease
    /// (with the group's reward expression), reset with `seed` and the envs' global indices.
    /// Returns what joined, or nil.
    public func recover(seed: UInt64, render: Bool = false, cameras: [String] = []) -> Recovered? {
        var addresses: [String] = [], indices: [Int] = [], observations: [Double] = [], images: [SensorMsgs_Image] = []
        for (k, m) in members.enumerated() where envs[k] == nil && Date() >= nextAttempt[k] {
            // Until it is back: 5 s, 10 s, 20 s ... a minute between attempts.
            nextAttempt[k] = Date().addingTimeInterval(backoff[k])
            backoff[k] = min(2 * backoff[k], Self.maxRetryInterval)
            // A short probe first: a server that is still gone costs a second, not a call timeout.
            guard let probe = try? ServiceClient(server: m.address, timeout: 1, security: security), (try? probe.describe()) != nil else { continue }
            do {
                let e = try Self.open(m, options: options, timeout: timeout, security: security)
                guard e.description.task.name == description.task.name, e.observationSize == observationSize, e.actionSize == actionSize,
                      e.actionChoices == actionChoices else {
                    e.close()
                    continue
                }
                if let reward { try e.setReward(reward) }
                let r = try Self.reset(e, m, seed: seed, render: render, cameras: cameras)
                envs[k] = e
                backoff[k] = Self.retryInterval
                addresses.append(m.address)
                observations += r.observations
                images += r.images
                indices += Array(m.offset..<(m.offset + m.count))
            } catch {
                continue
            }
        }
        // Rows follow global order: the caller rebuilds its per-env state from globalIndices.
        return addresses.isEmpty ? nil : Recovered(addresses: addresses, globalIndices: indices, observations: observations, images: images)
    }

    /// Releases every live lease. Idempotent.
    public func close() {
        for k in envs.indices {
            envs[k]?.close()
            envs[k] = nil
        }
    }

    /// Whether `error` says the server is gone (no reply in time, its process gone, our lease
    /// unknown to it: it restarted) rather than refusing the call.
    static func isLoss(_ error: any Error) -> Bool {
        guard let s = error as? ServiceError else { return true }  // the step channel's own failures
        switch s.code {
        case .unavailable, .deadlineExceeded: return true
        case .failedPrecondition: return s.message.contains("expired or unknown")
        default: return false
        }
    }

    /// What each live member's call returned, and the members that were lost in it.
    private struct Outcome<T> {
        var values: [T]
        var lost: MembersLost?
        func get() throws -> [T] {
            if let lost { throw lost }
            return values
        }
    }

    /// Runs `body` on each live member at once (one thread each when there are several), with its
    /// position among the live members. A member whose server is gone (`isLoss`) is dropped and
    /// reported in `lost`; any other error is rethrown, every member kept.
    private func perMember<T>(_ body: @escaping @Sendable (Int, Member, VectorEnv) throws -> T) throws -> Outcome<T> {
        let targets = zip(members.indices, envs).compactMap { k, e in e.map { (k, $0) } }
        guard !targets.isEmpty else { throw ServiceError(.unavailable, "every server of the vector is lost: \(members.map(\.address).joined(separator: ", "))") }
        let results = UnsafeResults<T>(count: targets.count)
        let members = self.members
        if targets.count == 1 {
            results.set(0, Result { try body(0, members[targets[0].0], targets[0].1) })
        } else {
            DispatchQueue.concurrentPerform(iterations: targets.count) { j in
                results.set(j, Result { try body(j, members[targets[j].0], targets[j].1) })
            }
        }
        var out = Outcome<T>(values: [], lost: nil)
        var lostAddresses: [String] = [], errors: [String] = []
        for (j, (k, e)) in targets.enumerated() {
            switch results.get(j) {
            case .success(let v): out.values.append(v)
            case .failure(let error):
                guard Self.isLoss(error) else { throw error }
                // Its lease dies with the server (or expires): no release call to a silent server.
                e.abandon()
                envs[k] = nil
                nextAttempt[k] = Date().addingTimeInterval(backoff[k])
                lostAddresses.append(members[k].address)
                errors.append("\(error)")
            }
        }
        if !lostAddresses.isEmpty { out.lost = MembersLost(addresses: lostAddresses, errors: errors) }
        return out
    }
}

/// One slot per concurrent task: each task writes only its own slot, read after they all joined.
private final class UnsafeResults<T>: @unchecked Sendable {
    // Invariant: slot j is written by task j only, and read after concurrentPerform returned.
    private let slots: UnsafeMutablePointer<Result<T, any Error>?>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    func set(_ j: Int, _ r: Result<T, any Error>) { slots[j] = r }
    func get(_ j: Int) -> Result<T, any Error> { slots[j]! }
}

/// What a learner or an evaluator steps: one server's envs (`VectorEnv`) or several servers'
/// (`VectorEnvGroup`), all of them at once.
public protocol VectorEnvironment: AnyObject {
    var description: Robosim_DescribeResponse { get }
    var count: Int { get }
    var observationSize: Int { get }
    var actionSize: Int { get }
    var actionChoices: Int { get }
    var actionLow: [Double] { get }
    var actionHigh: [Double] { get }
    /// Images of the current states of `positions` (nil: all) from `cameras` (empty: the observation cameras).
    func render(positions: [Int]?, cameras: [String]) throws -> [SensorMsgs_Image]
    func reset(seed: UInt64?, render: Bool, cameras: [String]) throws -> (observations: [Double], images: [SensorMsgs_Image])
    func step(actions: [Double], render: Bool, cameras: [String]) throws -> VectorEnv.StepResult
}

extension VectorEnv: VectorEnvironment {
    public func reset(seed: UInt64?, render: Bool, cameras: [String]) throws -> (observations: [Double], images: [SensorMsgs_Image]) {
        try reset(seed: seed, seedIndices: nil, positions: nil, render: render, cameras: cameras)
    }

    public func step(actions: [Double], render: Bool, cameras: [String]) throws -> VectorEnv.StepResult {
        try step(actions: actions, positions: nil, render: render, cameras: cameras)
    }
}

extension VectorEnvGroup: VectorEnvironment {}
