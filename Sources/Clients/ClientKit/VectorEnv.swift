import Foundation
import Logging
import Messaging

/// Envs of a lockstep server, leased by one client and driven together: lease (with renewal),
/// reset, step, render and release. The Swift twin of Python's `RoboSimVectorEnv`; sim-collect
/// records through it, and trainers and deployers drive envs through it.
///
/// Positions: the vector's envs are numbered 0..<count in lease order (`envIDs[k]` is the server's
/// index of position `k`); every array is position-major. Not thread-safe: one caller at a time
/// (`renewLease()` may be called from another thread while the caller waits, e.g. on a writer).
///
/// Server restarts: a call that finds the server gone or restarted (see `VectorEnv+Recovery.swift`)
/// waits up to `Options.reconnectTimeout` for it to answer again, takes a new lease of the same
/// positions, resets every env to the episode it was in (the seed schedule goes on), and reports
/// the interrupted step as truncated for every env (`StepResult.restartedPositions`).
public final class VectorEnv: @unchecked Sendable {
    // Invariant: `released` and `link` are guarded by `lock` (a renewal on another thread reads the
    // lease); the schedule and `pending` are the owner thread's; everything else is immutable after init.

    /// How to lease.
    public struct Options: Sendable {
        /// Envs to lease (default: every env of the server).
        public var count: Int?
        public var clientName = "swift-vector-env"
        /// Lease time to live (seconds): the lease expires when unused this long (renew it while pausing).
        public var ttl = 60.0
        public var transport = Transport.auto
        public var autoreset = Robosim_Autoreset.sameStep
        /// Lease exactly these envs of the server (nil: any `count` free ones).
        public var envIDs: [UInt32]?
        /// Seconds to wait for a lost or restarted server to answer again before the call fails
        /// (default 60; 0: no reconnection, the call's error propagates).
        public var reconnectTimeout = 60.0
        /// Where reconnections are logged (a warning each).
        public var logger = Logger(label: "robosim.vector-env")
        public init(count: Int? = nil, clientName: String = "swift-vector-env", ttl: Double = 60, transport: Transport = .auto,
                    autoreset: Robosim_Autoreset = .sameStep, envIDs: [UInt32]? = nil, reconnectTimeout: Double = 60) {
            self.count = count
            self.reconnectTimeout = reconnectTimeout
            self.envIDs = envIDs
            self.clientName = clientName
            self.ttl = ttl
            self.transport = transport
            self.autoreset = autoreset
        }
    }

    /// How reset and step reach the server: `auto` through a same-host step channel
    /// (`/sim/open_channel`) when one can be had, else sockets; `shm` fails without one; `socket`
    /// never uses one. Steps of some positions, end-effector targets and rendering use sockets.
    public enum Transport: String, Sendable, CaseIterable {
        case auto, shm, socket
    }

    /// Where each camera's images are in a reply: per env, for each requested camera in order, its
    /// rgb image if it has rgb, then its depth image if it has depth.
    public struct ImageLayout: Sendable, Equatable {
        public struct Camera: Sendable, Equatable {
            public let name: String
            public let width: Int, height: Int
            public let rgb: Bool, depth: Bool
        }
        public let cameras: [Camera]
        /// Images per env.
        public var perEnv: Int { cameras.reduce(0) { $0 + ($1.rgb ? 1 : 0) + ($1.depth ? 1 : 0) } }

        /// Env `k`'s images of camera `name`: (rgb, depth), each nil when the camera does not draw it.
        public func images(_ images: [SensorMsgs_Image], env k: Int, camera name: String) -> (rgb: SensorMsgs_Image?, depth: SensorMsgs_Image?) {
            guard k >= 0, (k + 1) * perEnv <= images.count else { return (nil, nil) }
            var position = k * perEnv
            for c in cameras {
                if c.name == name {
                    return (c.rgb ? images[position] : nil, c.depth ? images[position + (c.rgb ? 1 : 0)] : nil)
                }
                position += (c.rgb ? 1 : 0) + (c.depth ? 1 : 0)
            }
            return (nil, nil)
        }
    }

    /// What a step returns, position-major.
    public struct StepResult: Sendable {
        public var observations: [Double]
        public var rewards: [Double]
        public var terminated: [Bool]
        public var truncated: [Bool]
        /// The task's success flag of the step, per env (as gymnasium-robotics' `is_success`).
        public var success: [Bool]
        /// Envs whose episode ended in this step (and auto-reset): position → final observation.
        public var finalObservations: [Int: [Double]]
        /// With `render`: the images of the states reached, and of the final states (in the order
        /// of `finalPositions`).
        public var images: [SensorMsgs_Image]
        public var finalImages: [SensorMsgs_Image]
        public var finalPositions: [Int]
        /// Rows truncated because their server restarted (`VectorEnv.restartReason`): the step was
        /// not taken, `observations` are the envs' reset observations, rewards are 0.
        public var restartedPositions: [Int] = []
        /// The servers that restarted (or were lost and came back) during the call.
        public var restartedServers: [String] = []
    }

    /// The truncation reason of the envs of a restarted server.
    public static let restartReason = "server restarted"

    public let client: ServiceClient
    public let description: Robosim_DescribeResponse
    /// The lease (a new one after a reconnection).
    public var lease: String { lock.withLock { link.lease } }
    /// The server's index of each position (may change after a reconnection, unless `Options.envIDs` named them).
    public var envIDs: [UInt32] { lock.withLock { link.envIDs } }
    /// Envs in the vector.
    public let count: Int
    /// Reconnections after the server was lost or restarted.
    public internal(set) var reconnects = 0
    /// Those of `reconnects` that found a new server process (another `instance_id`); the others
    /// found the same process, which had only lost the lease (a call that timed out, a lease that expired).
    public internal(set) var restarts = 0
    /// Episodes that were in flight (at least one step taken) when the server was lost.
    public internal(set) var episodesLost = 0
    /// The server process's `instance_id` (`/sim/describe`), the new one's after a restart.
    public internal(set) var serverInstance: String
    public let observationSize: Int
    public let actionSize: Int
    /// The task's names of the observation and action components (`observation_<i>` when the
    /// server names none).
    public let observationNames: [String]
    public let actionNames: [String]
    public let actionLow: [Double]
    public let actionHigh: [Double]
    /// Choices of a discrete action (0: continuous): each env's action is then one index.
    public let actionChoices: Int
    let lock = NSLock()
    private var released = false
    /// The lease and what hangs on it; replaced by a reconnection.
    struct Link {
        var lease: String
        var envIDs: [UInt32]
        var positionOf: [UInt32: Int]
        /// The step channel in use (nil: sockets).
        var channel: StepChannel?
    }
    var link: Link
    var channel: StepChannel? { lock.withLock { link.channel } }
    var positionOf: [UInt32: Int] { lock.withLock { link.positionOf } }
    let autoreset: Robosim_Autoreset
    let options: Options
    /// The seed schedule, per position: the seed of the last seeded reset (nil: none yet), the
    /// env's seed index, the episode in flight and the steps taken in it, and whether it waits for
    /// a next-step reset. A reconnection resets each env to the start of its episode in flight.
    var runSeed: [UInt64?]
    var seedIndex: [UInt64]
    var episode: [UInt64]
    var episodeSteps: [Int]
    var awaitingReset: [Bool]
    /// The last observation of each position (the final observation of a restart's truncation).
    var lastObservations: [Double]
    /// After a reconnection: each position's reset observation, reported by its next step.
    var pending: [[Double]?]
    var anyPending = false
    /// What reset and step go through: `.shm` or `.socket`.
    public var transport: Transport { channel == nil ? .socket : .shm }

    /// Seconds the server spent on the last step through the step channel (the rest of the call is
    /// transport); nil over sockets.
    public var lastServerSeconds: Double? { channel.map { Double($0.serverNanoseconds) / 1e9 } }

    /// Describes the server, checks that it steps in lockstep, and leases the envs.
    public init(client: ServiceClient, options: Options = Options()) throws {
        self.client = client
        let d = try client.describe()
        description = d
        serverInstance = d.instanceID
        guard d.mode == "lockstep" else {
            throw ServiceError(.failedPrecondition, "a vector env needs a server in lockstep mode (sim-server --mode lockstep); this one runs in \(d.mode) mode")
        }
        let count = options.count ?? Int(d.envCount)
        guard count >= 1, count <= Int(d.envCount) else {
            throw ServiceError(.invalidArgument, "count must be in 1...\(d.envCount) (the server's envs), got \(count)")
        }
        var request = Robosim_LeaseRequest()
        if let ids = options.envIDs {
            guard !ids.isEmpty, ids.allSatisfy({ $0 < d.envCount }) else {
                throw ServiceError(.invalidArgument, "env ids must be in 0..<\(d.envCount) (the server's envs), got \(ids)")
            }
            request.envIds = ids
        } else {
            request.count = UInt32(count)
        }
        request.clientName = options.clientName
        request.ttlS = options.ttl
        let leased: Robosim_LeaseResponse = try client.call("/sim/lease", request)
        self.count = leased.envIds.count
        observationSize = Int(d.observationSize)
        actionSize = Int(d.actionSize)
        observationNames = d.observationNames
        actionNames = d.actionNames
        actionLow = d.actionLow
        actionHigh = d.actionHigh
        actionChoices = Int(d.task.actionChoices)
        autoreset = options.autoreset
        self.options = options
        runSeed = Array(repeating: nil, count: count)
        seedIndex = leased.envIds.map(UInt64.init)
        episode = Array(repeating: 0, count: count)
        episodeSteps = Array(repeating: 0, count: count)
        awaitingReset = Array(repeating: false, count: count)
        lastObservations = []
        pending = Array(repeating: nil, count: count)
        link = try Self.link(client: client, lease: leased, options: options)
    }

    /// The link of a new lease: its step channel opened when the transport asks for one (on failure
    /// the lease is released).
    static func link(client: ServiceClient, lease leased: Robosim_LeaseResponse, options: Options) throws -> Link {
        let channel: StepChannel?
        do {
            channel = options.transport == .socket ? nil : try Self.openChannel(client: client, lease: leased, required: options.transport == .shm)
        } catch {
            var release = Robosim_ReleaseRequest()
            release.lease = leased.lease
            _ = try? client.call("/sim/release", release) as Robosim_Empty
            throw error
        }
        channel?.store(StepChannel.Header.autoreset, options.autoreset == .nextStep ? 1 : 0)
        return Link(lease: leased.lease, envIDs: leased.envIds, positionOf: Dictionary(uniqueKeysWithValues: leased.envIds.enumerated().map { ($1, $0) }),
                    channel: channel)
    }

    /// A mapped step channel for the lease, or nil (another machine, an older server) unless `required`.
    private static func openChannel(client: ServiceClient, lease: Robosim_LeaseResponse, required: Bool) throws -> StepChannel? {
        do {
            var request = Robosim_OpenChannelRequest()
            request.lease = lease.lease
            let r: Robosim_OpenChannelResponse = try client.call("/sim/open_channel", request)
            let layout = StepChannel.Layout(envs: r.envIds.count, observationSize: Int(r.observationSize), actionSize: Int(r.actionSize))
            guard r.envIds == lease.envIds, UInt64(layout.byteCount) == r.byteCount, UInt64(layout.actions) == r.actions,
                  UInt64(layout.observations) == r.observations, UInt64(layout.final) == r.final else {
                throw ChannelError("/sim/open_channel described another layout or other envs")
            }
            // The path comes from the wire: only the server's own descriptor (/proc/PID/fd/N) is opened.
            guard Self.isChannelPath(r.path) else { throw ChannelError("/sim/open_channel named '\(PathEscapeError.printable(r.path))', not a /proc/PID/fd/N channel") }
            return try StepChannel.attach(path: r.path, layout: layout, nonce: r.nonce)
        } catch {
            if required { throw ServiceError(.unavailable, "transport shm: no step channel: \(error)") }
            return nil  // a channel that is never mapped closes with the lease
        }
    }

    /// Whether `path` is what servers send for a step channel: `/proc/PID/fd/N`, digits only.
    static func isChannelPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 5 && parts[0].isEmpty && parts[1] == "proc" && parts[3] == "fd"
            && [parts[2], parts[4]].allSatisfy { !$0.isEmpty && $0.count <= 10 && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    deinit { close() }

    /// The layout of images when `cameras` are rendered (nil: the server's observation cameras).
    public func imageLayout(cameras names: [String]? = nil) -> ImageLayout {
        let chosen = names.map { n in description.cameras.filter { n.contains($0.name) }.sorted { n.firstIndex(of: $0.name)! < n.firstIndex(of: $1.name)! } }
            ?? description.cameras.filter(\.observation)
        return ImageLayout(cameras: chosen.map { .init(name: $0.name, width: Int($0.width), height: Int($0.height), rgb: $0.rgb, depth: $0.depth) })
    }

    /// Resets `positions` (default all); with a seed, each env's episodes restart from (seed, env
    /// index), or (seed, `seedIndices[k]`) given those (one per env: a vector spread over servers
    /// passes global indices). With a seed and `episodes` (one per env), each env starts at that
    /// episode of its run instead of episode 0 (replaying a recorded episode). Returns the new
    /// observations (position-major, of `positions`) and, with `render`, their images.
    public func reset(seed: UInt64? = nil, seedIndices: [UInt64]? = nil, episodes: [UInt64]? = nil, positions: [Int]? = nil,
                      render: Bool = false, cameras: [String] = []) throws -> (observations: [Double], images: [SensorMsgs_Image]) {
        let r: (observations: [Double], images: [SensorMsgs_Image])
        do {
            r = try resetCall(seed: seed, seedIndices: seedIndices, episodes: episodes, positions: positions, render: render, cameras: cameras)
        } catch {
            // The server came back: the envs are reset to their schedule; now the reset asked for.
            try recover(after: error, in: "/sim/reset")
            r = try resetCall(seed: seed, seedIndices: seedIndices, episodes: episodes, positions: positions, render: render, cameras: cameras)
        }
        trackReset(seed: seed, seedIndices: seedIndices, episodes: episodes, positions: positions, observations: r.observations)
        return r
    }

    func resetCall(seed: UInt64?, seedIndices: [UInt64]?, episodes: [UInt64]?, positions: [Int]?,
                   render: Bool, cameras: [String]) throws -> (observations: [Double], images: [SensorMsgs_Image]) {
        if let channel, positions == nil, !render, seedIndices == nil, episodes == nil {
            channel.store(StepChannel.Header.hasSeed, seed == nil ? 0 : 1)
            if let seed { channel.seed = seed }
            try channel.call(.reset, timeout: callTimeout)
            return (Array(channel.observations), [])
        }
        var request = Robosim_ResetRequest()
        request.lease = lease
        request.envIds = try ids(positions)
        if let seed { request.seed = seed }
        if let seedIndices { request.seedIndices = seedIndices }
        if let episodes { request.episodes = episodes }
        request.render = render
        request.cameras = cameras
        let r: Robosim_ResetResponse = try client.call("/sim/reset", request)
        return (r.observations, r.images)
    }

    /// One control step of `positions` (default all) with their actions (`actionSize` each,
    /// position-major; the server clips them to the bounds). Envs whose episode ends start the next
    /// one as `Options.autoreset` says: in the same call, or in their next step.
    public func step(actions: [Double], positions: [Int]? = nil, render: Bool = false, cameras: [String] = []) throws -> StepResult {
        try guarded(positions: positions, render: render, cameras: cameras) {
            if let channel = self.channel, positions == nil, !render {
                guard actions.count == self.count * self.actionSize else {
                    throw ServiceError(.invalidArgument, "expected \(self.count * self.actionSize) actions (\(self.count) envs x \(self.actionSize)), got \(actions.count)")
                }
                _ = channel.actions.update(from: actions)
                try channel.call(.step, timeout: self.callTimeout)
                return self.stepResult(channel)
            }
            var request = Robosim_StepRequest()
            request.actions = actions
            return try self.step(request, positions: positions, render: render, cameras: cameras)
        }
    }

    /// One control step driving each env's end effector toward a target (x, y, z per env, world
    /// frame, metres) through the safety layer, instead of the task's action.
    public func step(endEffectorTargets targets: [Double], positions: [Int]? = nil, render: Bool = false, cameras: [String] = []) throws -> StepResult {
        try guarded(positions: positions, render: render, cameras: cameras) {
            var request = Robosim_StepRequest()
            request.eeTargets = targets
            return try self.step(request, positions: positions, render: render, cameras: cameras)
        }
    }

    /// The client's call timeout, for the step channel (at most a day).
    private var callTimeout: Duration { .milliseconds(Int64(min(max(client.timeout, 0), 86_400) * 1000)) }

    /// The step channel's arrays as a `StepResult`.
    private func stepResult(_ channel: StepChannel) -> StepResult {
        var finals: [Int: [Double]] = [:], finalPositions: [Int] = []
        let o = observationSize
        for k in 0..<count where channel.final[k] != 0 {
            finals[k] = Array(channel.finalObservations[(k * o)..<((k + 1) * o)])
            finalPositions.append(k)
        }
        return StepResult(observations: Array(channel.observations), rewards: Array(channel.rewards), terminated: channel.terminated.map { $0 != 0 },
                          truncated: channel.truncated.map { $0 != 0 }, success: channel.success.map { $0 != 0 }, finalObservations: finals,
                          images: [], finalImages: [], finalPositions: finalPositions)
    }

    func step(_ base: Robosim_StepRequest, positions: [Int]?, render: Bool, cameras: [String]) throws -> StepResult {
        var request = base
        request.autoreset = autoreset
        request.lease = lease
        request.envIds = try ids(positions)
        request.render = render
        request.cameras = cameras
        let r: Robosim_StepResponse = try client.call("/sim/step", request)
        let n = positions?.count ?? count
        guard r.observations.count == n * observationSize, r.rewards.count == n, r.terminated.count == n, r.truncated.count == n,
              r.finalObservations.count == r.finalEnvIds.count * observationSize
        else {
            throw ServiceError(.malformed, "/sim/step returned \(r.observations.count) observation values and \(r.rewards.count) rewards for \(n) envs")
        }
        var finals: [Int: [Double]] = [:], finalPositions: [Int] = []
        let positionOf = self.positionOf
        for (k, id) in r.finalEnvIds.enumerated() {
            guard let p = positionOf[id] else { throw ServiceError(.malformed, "/sim/step returned a final observation of env \(id), not leased") }
            finals[p] = Array(r.finalObservations[(k * observationSize)..<((k + 1) * observationSize)])
            finalPositions.append(p)
        }
        return StepResult(observations: r.observations, rewards: r.rewards, terminated: r.terminated, truncated: r.truncated,
                          success: r.success.count == n ? r.success : Array(repeating: false, count: n), finalObservations: finals,
                          images: r.images, finalImages: r.finalImages, finalPositions: finalPositions)
    }

    /// Images of the current states of `positions` (default all) from `cameras` (default: the
    /// observation cameras), without stepping.
    public func render(positions: [Int]? = nil, cameras: [String] = []) throws -> [SensorMsgs_Image] {
        do { return try renderCall(positions: positions, cameras: cameras) } catch {
            try recover(after: error, in: "/sim/render")
            return try renderCall(positions: positions, cameras: cameras)
        }
    }

    func renderCall(positions: [Int]?, cameras: [String]) throws -> [SensorMsgs_Image] {
        var request = Robosim_RenderRequest()
        request.lease = lease
        request.envIds = try ids(positions)
        request.cameras = cameras
        let r: Robosim_RenderResponse = try client.call("/sim/render", request)
        return r.images
    }

    /// Replaces the task's reward for this lease's envs with a reward expression (`/sim/set_reward`;
    /// `""` restores the task's reward). Returns the names it reads; a bad expression throws
    /// `INVALID_ARGUMENT` with its position and changes nothing.
    @discardableResult
    public func setReward(_ expression: String) throws -> [String] {
        var request = Robosim_SetRewardRequest()
        request.lease = lease
        request.expression = expression
        let r: Robosim_SetRewardResponse = try client.call("/sim/set_reward", request)
        reward = expression.isEmpty ? nil : expression
        return r.names
    }

    /// How the reward and the task's reward terms behaved since the last call (`/sim/reward_statistics`).
    public struct RewardStatistics: Sendable {
        /// The task's terms, then "reward" and "success".
        public var names: [String]
        public var mean: [Double], min: [Double], max: [Double]
        public var steps: Int

        public init(names: [String], mean: [Double], min: [Double], max: [Double], steps: Int) {
            (self.names, self.mean, self.min, self.max, self.steps) = (names, mean, min, max, steps)
        }

        /// Several leases' statistics as one (means weighted by steps).
        public static func combined(_ parts: [RewardStatistics]) -> RewardStatistics {
            guard var out = parts.first else { return RewardStatistics(names: [], mean: [], min: [], max: [], steps: 0) }
            for p in parts.dropFirst() where p.steps > 0 && p.names == out.names {
                let total = out.steps > Int.max - p.steps ? Int.max : out.steps + p.steps
                for k in out.names.indices {
                    out.mean[k] = (out.mean[k] * Double(out.steps) + p.mean[k] * Double(p.steps)) / Double(total)
                    out.min[k] = out.steps == 0 ? p.min[k] : Swift.min(out.min[k], p.min[k])
                    out.max[k] = out.steps == 0 ? p.max[k] : Swift.max(out.max[k], p.max[k])
                }
                out.steps = total
            }
            return out
        }
    }

    /// `timeout`: seconds to wait for the reply (nil: the client's).
    public func rewardStatistics(timeout: Double? = nil) throws -> RewardStatistics {
        var request = Robosim_RewardStatisticsRequest()
        request.lease = lease
        let r: Robosim_RewardStatisticsResponse = try client.call("/sim/reward_statistics", request, timeout: timeout)
        guard r.mean.count == r.names.count, r.min.count == r.names.count, r.max.count == r.names.count else {
            throw ServiceError(.malformed, "/sim/reward_statistics returned \(r.names.count) names and \(r.mean.count) means")
        }
        return RewardStatistics(names: r.names, mean: r.mean, min: r.min, max: r.max, steps: Int(clamping: r.steps))
    }

    /// The reward expression in force (set again on a new lease after a reconnection).
    var reward: String?

    /// Keeps the lease alive without stepping (a pause longer than its time to live). Thread-safe.
    public func renewLease() throws {
        var request = Robosim_LeaseRequest()
        request.lease = lease
        let _: Robosim_LeaseResponse = try client.call("/sim/lease", request)
    }

    /// Releases the lease (idempotent; also on deinit). Errors are ignored: an expired lease is gone
    /// anyway, so the call waits at most 5 s (a server that went away costs no more on the way out).
    public func close() {
        let first = lock.withLock { () -> Bool in
            defer { released = true }
            return !released
        }
        guard first else { return }
        var request = Robosim_ReleaseRequest()
        request.lease = lease
        _ = try? client.call("/sim/release", request, as: Robosim_Empty.self, timeout: min(client.timeout, 5))
    }

    /// Gives up the vector without a release call (its server is gone; the lease dies with it).
    public func abandon() {
        lock.withLock { released = true }
    }

    func ids(_ positions: [Int]?) throws -> [UInt32] {
        let envIDs = self.envIDs
        guard let positions else { return envIDs }
        return try positions.map { p in
            guard envIDs.indices.contains(p) else { throw ServiceError(.invalidArgument, "position \(p) is outside the vector's \(count) envs") }
            return envIDs[p]
        }
    }
}
