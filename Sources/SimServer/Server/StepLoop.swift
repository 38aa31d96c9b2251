import Foundation
import Logging
import Messaging
import PluginAPI
import RewardLanguage
import SimEngine
import Synchronization

/// The engine thread: owns the world, applies queued commands (service calls) between control
/// steps, advances physics in realtime mode, and publishes what each step produced.
/// I/O threads never touch the world; they enqueue commands here. Step channels (same-host shared
/// memory) step the world on their own threads, one batch at a time, through `serve(_:)`.
final class StepLoop: @unchecked Sendable {
    // Invariant: `world`, `simTime` and the publish counters are used only while `exclusive` is
    // held: by the loop thread, or by a step channel's thread inside `serve(_:)`.
    enum Command {
        /// `render`: the reply carries images of these cameras (indices, checked by the caller).
        /// `eeTargets`: end-effector targets (3 per env) drive the robots instead of the actions.
        /// `reward`: the lease's reward (its expression, nil: the task's reward; and its statistics).
        case step(ids: [Int], actions: [Double], eeTargets: [Double]?, render: [Int]?, autoreset: Autoreset, reward: LeaseReward?,
                  responder: ServiceResponder)
        case reset(ids: [Int], seed: UInt64?, seedIndices: [Int]?, episodes: [UInt64]?, render: [Int]?, responder: ServiceResponder)
        /// Images of the envs' current states (camera indices checked by the caller).
        case render(ids: [Int], cameras: [Int], responder: ServiceResponder)
        /// Checked parameter changes, applied together between two control steps; `answer` builds
        /// the reply once they are in force.
        case setParameters(ParameterChanges, responder: ServiceResponder, answer: @Sendable () -> Robosim_SetParametersResponse)
    }

    let world: World
    let mode: SimServerConfiguration.Mode
    /// The server's node (publishes through `publisher`); closed by the server after `stop()`.
    let node: Node
    let inbox: CommandInbox
    private let publisher: StepPublisher
    /// The camera pipeline (stopped by the server after the loop).
    var cameras: CameraPublisher? { publisher.cameras }
    private let logger: Logger
    private let queue = Mutex<[Command]>([])
    private let wake = NSCondition()
    private let exclusive = Mutex<Void>(())
    private let running = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(true)
    let paused = Atomic<Bool>(false)
    /// Clients pacing the realtime loop on sim time (`/pace`).
    let pace: PaceBarrier
    /// Real-time factor (realtime mode): stored as the bit pattern of a Double.
    private let realTimeFactorBits = Atomic<UInt64>(1.0.bitPattern)
    /// Sim time of the loop: control steps taken times the control period (seconds).
    private(set) var simTime = 0.0
    let simTimeBits = Atomic<UInt64>(0)
    /// A copy of the loop-owned parameters (topic rates, reset ranges) for other threads, updated
    /// by the loop after each change.
    private let applied: Mutex<LoopParameters>

    init(world: World, mode: SimServerConfiguration.Mode, realTimeFactor: Double, node: Node, inbox: CommandInbox,
         publisher: StepPublisher, logger: Logger) {
        self.world = world
        self.node = node
        self.inbox = inbox
        self.mode = mode
        self.publisher = publisher
        self.logger = logger
        pace = PaceBarrier(logger: logger)
        applied = Mutex(LoopParameters(rates: publisher.rates, resetRanges: world.resetRanges))
        realTimeFactorBits.store(realTimeFactor.bitPattern, ordering: .relaxed)
    }

    /// The topic rates and reset ranges in force (any thread).
    var parameters: LoopParameters { applied.withLock { $0 } }

    var realTimeFactor: Double {
        get { Double(bitPattern: realTimeFactorBits.load(ordering: .relaxed)) }
        set { realTimeFactorBits.store(newValue.bitPattern, ordering: .relaxed); signal() }
    }

    /// Queues a call for the loop; `RESOURCE_EXHAUSTED` when `WireLimits.maxQueuedCalls` wait
    /// already (a client that sends faster than the loop answers is pushed back, not buffered).
    func enqueue(_ command: Command) throws(ServiceError) {
        let accepted = queue.withLock { q in
            guard q.count < WireLimits.maxQueuedCalls else { return false }
            q.append(command)
            return true
        }
        guard accepted else {
            throw ServiceError(.resourceExhausted, "\(WireLimits.maxQueuedCalls) calls are waiting for the step loop, its limit: wait for replies before sending more")
        }
        signal()
    }

    /// One `/pace` message (the node's I/O thread): wakes the loop when it may move the limit.
    func receive(pace message: Robosim_Pace) {
        if pace.receive(message) { signal() }
    }

    private func signal() {
        wake.lock()
        wake.signal()
        wake.unlock()
    }

    func start() {
        running.store(true, ordering: .releasing)
        finished.store(false, ordering: .releasing)
        let thread = Thread { [self] in
            loop()
            finished.store(true, ordering: .releasing)
            signal()
        }
        thread.name = "robosim.steploop"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Marks the loop as stopping (calls that fail from now on say the server is shutting down).
    func stopping() { running.store(false, ordering: .releasing) }

    func stop() {
        running.store(false, ordering: .releasing)
        signal()
        wake.lock()
        while !finished.load(ordering: .acquiring) { _ = wake.wait(until: Date().addingTimeInterval(0.05)) }
        wake.unlock()
    }

    private func loop() {
        let allEnvs = Array(0..<world.envs.count)
        var actions = [Double](repeating: 0, count: world.envs.count * world.actionSize)
        var nextTick = Date()
        var lastFactor = realTimeFactor
        var drained = UInt64.max
        var heldAt: Double?   // the sim time the loop last waited at for a pacing client
        var heldTold = Date.distantPast   // when /clock last said so
        while running.load(ordering: .acquiring) {
            let commands = queue.withLock { q in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            if !commands.isEmpty { exclusive.withLock { _ in for command in commands { handle(command) } } }
            guard mode == .realtime, !paused.load(ordering: .relaxed) else {
                wait(until: nil)
                continue
            }
            let rtf = realTimeFactor
            if rtf != lastFactor {
                // A new factor takes effect now, not after the tick the old one scheduled.
                lastFactor = rtf
                nextTick = Date()
            }
            if let limit = pace.limit(), simTime >= limit + 1e-9 {
                // A pacing client has not caught up: wait for its next /pace (it wakes the loop). It
                // hears the time it is waited at, and the loop always steps once past a stamp, so a
                // horizon shorter than a step or than the clock's period still moves on. The time is
                // said again every 0.2 s of waiting: a /clock dropped on the way (a subscriber's full
                // queue, one still connecting) must not leave both sides waiting for each other.
                let now = Date()
                if heldAt != simTime || now.timeIntervalSince(heldTold) >= 0.2 {
                    heldAt = simTime
                    heldTold = now
                    exclusive.withLock { _ in publisher.publishClock(simTime: simTime) }
                }
                wait(until: Date().addingTimeInterval(0.002))
                continue
            }
            if rtf > 0 {
                let now = Date()
                if now < nextTick {
                    wait(until: nextTick)
                    continue
                }
                let period = world.configuration.controlDt / rtf
                nextTick = max(nextTick.addingTimeInterval(period), now.addingTimeInterval(-period))
            }
            // Realtime: each env holds the latest action that passed the safety layer (zeros until one comes).
            exclusive.withLock { _ in
                let generation = inbox.generation
                if generation != drained {
                    inbox.drain(into: world, actions: &actions)
                    drained = generation
                }
                advance(allEnvs, actions: actions)
            }
        }
        // Answer what is still queued.
        for command in queue.withLock({ q in defer { q.removeAll() }; return q }) {
            switch command {
            case .step(_, _, _, _, _, _, let r), .reset(_, _, _, _, _, let r), .render(_, _, let r), .setParameters(_, let r, _): r.fail(.unavailable("the server is shutting down"))
            }
        }
    }

    /// Sleeps until a command arrives, or `deadline`.
    private func wait(until deadline: Date?) {
        wake.lock()
        if queue.withLock({ $0.isEmpty }) && running.load(ordering: .acquiring) {
            _ = wake.wait(until: deadline ?? Date().addingTimeInterval(0.1))
        }
        wake.unlock()
    }

    private func advance(_ ids: [Int], actions: [Double], autoreset: Autoreset = .sameStep, reward: LeaseReward? = nil) {
        world.step(ids, actions: actions, autoreset: autoreset, reward: reward?.expression)
        reward?.record(ids, of: world.envs)
        var rejections: [(topic: String, reason: String)] = []
        for i in ids where !world.envs[i].rejections.isEmpty {
            rejections += world.envs[i].rejections
            world.envs[i].rejections.removeAll()
        }
        if !rejections.isEmpty { inbox.countRejections(rejections) }
        simTime += world.configuration.controlDt
        simTimeBits.store(simTime.bitPattern, ordering: .relaxed)
        for i in ids where world.envs[i].events.contains(where: { $0.kind == .started }) { world.envs[i].episodeStartTime = simTime }
        publisher.publish(world: world, stepped: ids, simTime: simTime)
    }

    private func handle(_ command: Command) {
        switch command {
        case .step(let ids, let actions, let eeTargets, let render, let autoreset, let reward, let responder):
            if let eeTargets {
                for (k, i) in ids.enumerated() {
                    let target = SIMD3(eeTargets[3 * k], eeTargets[3 * k + 1], eeTargets[3 * k + 2])
                    world.command(i, .robot(.endEffector(position: target, orientation: nil), origin: Names.env(i) + "/ee_target"))
                }
            } else {
                for i in ids { world.command(i, .action) }
            }
            world.keepsFinalStates = render != nil
            advance(ids, actions: actions, autoreset: autoreset, reward: reward)
            world.keepsFinalStates = false
            var response = stepResponse(ids)
            if let render {
                do throws(RenderError) {
                    try renderImages(ids, cameras: render, into: &response)
                } catch {
                    return responder.fail(renderFailure("the step was taken but its images could not be rendered", error))
                }
            }
            responder.succeed(response)
        case .reset(let ids, let seed, let seedIndices, let episodes, let render, let responder):
            world.reset(ids, seed: seed, seedIndices: seedIndices, episodes: episodes)
            for i in ids { world.envs[i].episodeStartTime = simTime }
            publisher.publishReset(world: world, envs: ids, simTime: simTime)
            var r = Robosim_ResetResponse()
            r.observations.reserveCapacity(ids.count * world.observationSize)
            for i in ids { r.observations.append(contentsOf: world.envs[i].observation) }
            if let render {
                do throws(RenderError) {
                    r.images = try publisher.cameras?.render(ids.map(snapshot), cameras: render) ?? []
                } catch {
                    return responder.fail(renderFailure("the envs were reset but their images could not be rendered", error))
                }
            }
            responder.succeed(r)
        case .render(let ids, let cameras, let responder):
            do throws(RenderError) {
                var r = Robosim_RenderResponse()
                r.images = try publisher.cameras?.render(ids.map(snapshot), cameras: cameras) ?? []
                responder.succeed(r)
            } catch {
                responder.fail(renderFailure("rendering failed", error))
            }
        case .setParameters(let changes, let responder, let answer):
            apply(changes)
            responder.succeed(answer())
        }
    }

    /// A step channel's request, read from its shared memory and checked by its thread.
    enum ChannelRequest {
        case step(autoreset: Autoreset, reward: LeaseReward?)
        case reset(seed: UInt64?)
    }

    /// Serves a step channel's request for `ids` on the channel's thread, with the world to
    /// itself: `actions` (checked: finite, `actionSize` per env) for a step; the results go into
    /// the channel's arrays. `UNAVAILABLE` once the server stops.
    func serve(_ request: ChannelRequest, ids: [Int], actions: [Double], into channel: StepChannel) -> ServiceError? {
        exclusive.withLock { _ -> ServiceError? in
            guard running.load(ordering: .acquiring) else { return .unavailable("the server is shutting down") }
            switch request {
            case .step(let autoreset, let reward):
                for i in ids { world.command(i, .action) }
                advance(ids, actions: actions, autoreset: autoreset, reward: reward)
                write(ids, into: channel, stepped: true)
            case .reset(let seed):
                world.reset(ids, seed: seed)
                for i in ids { world.envs[i].episodeStartTime = simTime }
                publisher.publishReset(world: world, envs: ids, simTime: simTime)
                write(ids, into: channel, stepped: false)
            }
            return nil
        }
    }

    /// The envs' observations (and, after a step, rewards, flags and final observations) in the
    /// channel's rows.
    private func write(_ ids: [Int], into channel: StepChannel, stepped: Bool) {
        let o = world.observationSize
        let (observations, finals) = (channel.observations, channel.finalObservations)
        let (rewards, terminated, truncated, success, final) = (channel.rewards, channel.terminated, channel.truncated, channel.success, channel.final)
        for (k, i) in ids.enumerated() {
            let env = world.envs[i]
            for j in 0..<o { observations[k * o + j] = env.observation[j] }
            let ended = stepped ? env.finalObservation : nil
            rewards[k] = stepped ? env.reward : 0
            terminated[k] = stepped && env.terminated ? 1 : 0
            truncated[k] = stepped && env.truncated ? 1 : 0
            success[k] = stepped && env.success ? 1 : 0
            final[k] = ended == nil ? 0 : 1
            if let ended { for j in 0..<o { finals[k * o + j] = ended[j] } }
        }
    }

    /// A render that failed: `UNAVAILABLE` when the server is stopping (its render threads went
    /// first), else `INTERNAL`.
    private func renderFailure(_ what: String, _ error: RenderError) -> ServiceError {
        running.load(ordering: .acquiring) ? .internalError("\(what): \(error)") : .unavailable("\(what): the server is shutting down")
    }

    /// Applies checked changes between two control steps, so none lands in the middle of a batch.
    private func apply(_ changes: ParameterChanges) {
        if let rtf = changes.realTimeFactor { realTimeFactor = rtf }
        if let p = changes.paused { paused.store(p, ordering: .relaxed) }
        if !changes.rates.isEmpty {
            var rates = publisher.rates
            for (name, hz) in changes.rates { rates[name] = hz }
            publisher.setRates(rates)
        }
        if !changes.resetRanges.isEmpty {
            world.setResetRanges(ResetRanges(world.resetRanges.ranges.merging(changes.resetRanges) { $1 }))
        }
        applied.withLock { $0 = LoopParameters(rates: publisher.rates, resetRanges: world.resetRanges) }
        logger.info("parameters changed", metadata: ["sim.parameters": "\(changes.names.joined(separator: ","))"])
    }

    /// The current state of env `i`, for rendering.
    private func snapshot(_ i: Int) -> StateSnapshot { world.snapshot(i, stamp: simTime) }

    /// Images of the states the step reached, and of the final states of envs that auto-reset.
    private func renderImages(_ ids: [Int], cameras indices: [Int], into response: inout Robosim_StepResponse) throws(RenderError) {
        guard let cameras = publisher.cameras else { return }
        let finals = response.finalEnvIds.map { world.finalSnapshot(Int($0), stamp: simTime) }
        let images = try cameras.render(ids.map(snapshot) + finals, cameras: indices)
        let perEnv = images.count / max(1, ids.count + finals.count)
        response.images = Array(images[0..<(ids.count * perEnv)])
        response.finalImages = Array(images[(ids.count * perEnv)...])
    }

    private func stepResponse(_ ids: [Int]) -> Robosim_StepResponse {
        var r = Robosim_StepResponse()
        r.observations.reserveCapacity(ids.count * world.observationSize)
        r.rewards.reserveCapacity(ids.count)
        for i in ids {
            let env = world.envs[i]
            r.observations.append(contentsOf: env.observation)
            r.rewards.append(env.reward)
            r.terminated.append(env.terminated)
            r.truncated.append(env.truncated)
            r.success.append(env.success)
            if let final = env.finalObservation {
                r.finalObservations.append(contentsOf: final)
                r.finalEnvIds.append(UInt32(i))
            }
        }
        return r
    }
}
