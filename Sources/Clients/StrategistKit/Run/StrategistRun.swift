import Foundation
import Logging
import Messaging
import Synchronization

/// What the run did, for the final report.
/// What a run of the strategist did: episodes ended and succeeded, strategies asked for.
public struct RunSummary: Sendable {
    public var ended = 0, succeeded = 0
    var lines: [String] = []
    var decisions = 0, fallbacks = 0
    /// Server restarts seen, and the episodes they cut short (played again when the run is seeded).
    public var restarts = 0, lost = 0
    var started = Date()

    /// The closing summary line(s).
    public func report(episodes: Int) -> String {
        let rate = ended > 0 ? Double(succeeded) / Double(ended) : 0
        var out = String(format: "sim-strategist: %d of %d episodes succeeded (%.0f%%) in %.1f s; %d strategies, %d from the offline fallback",
                         succeeded, ended, rate * 100, Date().timeIntervalSince(started), decisions, fallbacks)
        if restarts > 0 { out += String(format: "; %d server restart(s), %d episode(s) in flight lost", restarts, lost) }
        out += "\n" + lines.joined(separator: "\n")
        return out
    }
}

/// Drives the envs: one executor and one strategy request at a time per env.
/// The strategist over topics: per env, reads the T-bar, slot and tool poses and the episode events,
/// asks its `StrategySource` for a plan when the T-bar rests, and walks the plan as end-effector
/// targets on `/env_i/ee_target` (through the server's safety layer). What `sim-strategist` runs.
public final class StrategistRun: @unchecked Sendable {
    // Invariant: `loop` runs on one task; strategy requests hand results back through `results`.
    struct Driven {
        let id: Int
        let feed: EnvFeed
        let target: Publisher<GeometryMsgs_PoseStamped>
        let strategy: Publisher<Robosim_Strategy>
        var executor = PushExecutor()
        var starts = 0
        /// The outstanding strategy request (its number), if any; results of others are dropped.
        var asking: Int?
        /// Sim time before which not to ask again (after a request that found no push).
        var retryAfter = -Double.infinity
        /// Sim time since which the executor has had no plan (the bar may still be sliding).
        var idleSince: Double?
        /// The episode under way (started, not ended), and the index of the one after the last that ended.
        var inFlight: UInt64?
        var nextEpisode: UInt64 = 0

        /// Forgets the plan and any strategy request still out.
        mutating func forgetPlan() {
            executor.reset()
            asking = nil
            idleSince = nil
            retryAfter = -.infinity
        }
    }

    /// Before re-planning, wait until the T-bar has come to rest, or this long (sim seconds).
    static let settleLimit = 0.4

    public let source: StrategySource
    private var envs: [Driven] = []
    private var subscriptions: [CallbackSubscription] = []
    /// The server's sim time; the loop ticks on it.
    private let clock: SimClock
    /// `/pace`: holds the server's loop to the sim time this run has acted on.
    private let pace: Publisher<Robosim_Pace>
    private let nodeName: String
    /// Answers to strategy requests, by request number.
    private let results = Mutex<[Int: (env: Int, decision: StrategyDecision?)]>([:])
    private var requests = 0
    private let logDir: URL?
    private let logger: Logger
    /// Resets envs (ids) with the run's seed at episode numbers (after a server restart); nil: the run
    /// is not seeded.
    private let reseed: (@Sendable (_ ids: [Int], _ episodes: [UInt64]) throws -> Void)?
    /// Reads the server's instance id in the background; nil: restarts are known only by a clock
    /// that goes back.
    private let watch: InstanceWatch?
    /// The instance id the run started with (nil with no `watch`).
    private let instance: String?
    private let interrupted = Atomic<Bool>(false)
    private var signalSources: [DispatchSourceSignal] = []

    /// Subscribes to and advertises the topics of envs `ids` on `node`; `logDir` (when given) gets one
    /// JSON-lines file per env and episode with every decision.
    ///
    /// `identify` reads the server's instance id (`/sim/describe`'s `instance_id`; it blocks, so give
    /// its call a short timeout, about 1 s) and `instance` is the id the run starts with: a different
    /// id means the server restarted. `identify` is called every `identifyInterval` seconds of wall
    /// time from a thread of the run's own while `loop` runs, and from `loop` when the clock goes back.
    /// Without them (or with an empty `instance`: a server that sends no id) a clock that goes back is
    /// taken for a restart.
    public init(node: Node, ids: [Int], source: StrategySource, logDir: String?, logger: Logger,
                reseed: (@Sendable (_ ids: [Int], _ episodes: [UInt64]) throws -> Void)? = nil,
                identify: (@Sendable () throws -> String)? = nil, instance: String? = nil,
                identifyInterval: Double = 0.5) throws {
        self.source = source
        self.reseed = reseed
        if let identify, let instance, !instance.isEmpty {
            watch = InstanceWatch(identify: identify, interval: identifyInterval)
            self.instance = instance
        } else {
            watch = nil
            self.instance = nil
        }
        self.logger = logger
        self.logDir = logDir.map { URL(fileURLWithPath: $0, isDirectory: true) }
        if let dir = self.logDir { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        clock = try SimClock(node: node)
        pace = try node.advertise("/pace")
        nodeName = node.name
        for i in ids {
            let feed = EnvFeed()
            let ns = "/env_\(i)"
            subscriptions.append(try node.onMessage("\(ns)/objects", Robosim_ObjectArray.self) { feed.objects($0) })
            subscriptions.append(try node.onMessage("\(ns)/robot/pose", GeometryMsgs_PoseStamped.self) { feed.robotPose($0) })
            subscriptions.append(try node.onMessage("\(ns)/episode", Robosim_EpisodeEvent.self) { feed.episode($0) })
            envs.append(Driven(id: i, feed: feed, target: try node.advertise("\(ns)/ee_target"), strategy: try node.advertise("\(ns)/strategy")))
        }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.interrupted.store(true, ordering: .relaxed) }
            s.resume()
            signalSources.append(s)
        }
    }

    /// Ends `loop` at its next tick, as SIGINT and SIGTERM do. Any thread.
    public func stop() {
        interrupted.store(true, ordering: .relaxed)
    }

    /// Runs until `episodes` episodes ended (0: until SIGINT/SIGTERM or `stop()`), deciding every
    /// `period` seconds of sim time (paced on `/clock`, so the outcome does not depend on the server's
    /// real-time factor).
    public func loop(episodes: Int, period: Double) async -> RunSummary {
        var summary = RunSummary()
        var tracker = instance.map { InstanceWatch.Tracker(known: $0) }
        watch?.start()
        defer { watch?.stop() }
        var lastProgress = Date()
        var next = clock.now ?? 0
        // The server may run this far past the sim time the last tick acted on: one tick. It then
        // waits at the next tick's time (and publishes it) until this loop has acted on it, so the
        // decisions land about as late in sim time as on a server at --rtf 1, whatever its speed.
        let horizon = period
        var lastClock: Double?
        var lastPaced: Double?
        var pacedAt = ContinuousClock.now, heardAtPace: UInt64 = 0
        while !interrupted.load(ordering: .relaxed) && (episodes == 0 || summary.ended < episodes) {
            let actedOn = clock.now
            let wentBack = actedOn.flatMap { now in lastClock.map { now + 1e-9 < $0 } } ?? false
            if let watch, var ids = tracker {
                // The instance id decides; a clock that went back only asks for it at once.
                // The read blocks (up to its timeout, behind a poll in flight): off the cooperative pool.
                let hint: (id: String?, number: Int)? = wentBack
                    ? await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: watch.read()) } } : nil
                let verdict = ids.check(seen: watch.latest, hint: hint)
                tracker = ids
                if case .restarted(let was, let now) = verdict {
                    restarted(.instance(was: was, now: now), clock: (lastClock, actedOn), &summary)
                    next = actedOn ?? next
                } else if wentBack {
                    logger.debug("the clock went back, but the server's instance id tells of no new restart", metadata: [
                        "strategist.clock_was": "\(String(format: "%.2f", lastClock ?? 0))",
                        "strategist.clock_now": "\(String(format: "%.2f", actedOn ?? 0))",
                        "strategist.instance": "\(ids.known ?? "unknown")",
                    ])
                    next = actedOn ?? next
                }
            } else if wentBack, let now = actedOn {
                restarted(.clockWentBack, clock: (lastClock, now), &summary)
                next = now
            }
            lastClock = actedOn ?? lastClock
            for k in envs.indices { tick(k, &summary, limit: episodes) }
            // Only a time newer than the last one paced: a silent clock (a paused, stopped or
            // restarting server) must not hold a restarted server at the old server's time. The same
            // time again after 0.25 s when the server said something since (one waiting for this
            // client repeats its time): a /pace lost on the way must not hold it until it gives up.
            let heard = clock.heard
            if let actedOn, actedOn != lastPaced || (heard != heardAtPace && ContinuousClock.now - pacedAt >= .milliseconds(250)) {
                lastPaced = actedOn
                pacedAt = .now
                heardAtPace = heard
                pace.publish(Robosim_Pace.with {
                    $0.node = nodeName
                    $0.stamp = .init(seconds: actedOn)
                    $0.horizonS = horizon
                })
            }
            if Date().timeIntervalSince(lastProgress) >= 2 {
                lastProgress = Date()
                let elapsed = Date().timeIntervalSince(summary.started)
                FileHandle.standardError.write(Data(String(
                    format: "sim-strategist: %d%@ episodes, %d succeeded (%.0f%%), %.2f episodes/s\n", summary.ended,
                    episodes > 0 ? "/\(episodes)" : "", summary.succeeded,
                    summary.ended > 0 ? 100 * Double(summary.succeeded) / Double(summary.ended) : 0, Double(summary.ended) / max(elapsed, 1e-9)).utf8))
            }
            // The next tick is `period` of sim time on; a loop that fell behind (or a clock that went
            // back: a restarted server) starts again from now rather than catching up tick by tick.
            let now = clock.now ?? 0
            next += period
            if next < now || next > now + 2 * period { next = now + period }
            await clock.wait(until: next, timeout: .milliseconds(250))
        }
        // Release the server at once (else it waits a second for this client). The node closes its
        // sockets without lingering, so give the message a moment to leave.
        pace.publish(Robosim_Pace.with { $0.node = nodeName; $0.leaving = true })
        try? await Task.sleep(for: .milliseconds(100))
        return summary
    }

    /// How a restart was noticed.
    enum RestartEvidence {
        /// The server's instance id changed (`now`), or the clock went back and the id could not be
        /// read (`now` nil: a server flapping).
        case instance(was: String, now: String?)
        /// The clock went back, on a run without instance ids.
        case clockWentBack
    }

    /// The server restarted (kill -9 and started again): its episodes in flight are lost; every env's
    /// plan is dropped, and with a seed each env starts again at the episode it was playing, so the
    /// run plays the episodes an uninterrupted one would. `clock` is the last sim time acted on and
    /// the one heard now (the old server's still, when the new one has not been heard yet).
    private func restarted(_ evidence: RestartEvidence, clock: (was: Double?, now: Double?), _ summary: inout RunSummary) {
        let lost = envs.filter { $0.inFlight != nil }
        summary.restarts += 1
        summary.lost += lost.count
        for k in envs.indices {
            envs[k].forgetPlan()
            envs[k].feed.forgetPoses()
        }
        var metadata: Logger.Metadata = [
            "strategist.clock_was": "\(clock.was.map { String(format: "%.2f", $0) } ?? "none")",
            "strategist.clock_now": "\(clock.now.map { String(format: "%.2f", $0) } ?? "none")",
            "strategist.lost": "\(lost.map { "env \($0.id) episode \($0.inFlight ?? 0)" }.joined(separator: ", "))",
        ]
        switch evidence {
        case .instance(let was, let now?):
            metadata["strategist.instance_was"] = "\(was)"
            metadata["strategist.instance_now"] = "\(now)"
            logger.warning("the server restarted (new instance id): episodes in flight lost", metadata: metadata)
        case .instance(let was, nil):
            metadata["strategist.instance_was"] = "\(was)"
            logger.warning(
                "the server restarted (its clock went back and it does not answer; its new instance id is adopted when read): episodes in flight lost",
                metadata: metadata)
        case .clockWentBack:
            logger.warning("the server restarted (its clock went back): episodes in flight lost", metadata: metadata)
        }
        guard let reseed else { return }
        let schedule = envs.map { (id: $0.id, episode: $0.inFlight ?? $0.nextEpisode) }
        for k in envs.indices { envs[k].inFlight = nil }
        do {
            try reseed(schedule.map(\.id), schedule.map(\.episode))
            logger.notice("reseeded the restarted server's envs", metadata: [
                "strategist.episodes": "\(schedule.map { "env \($0.id): \($0.episode)" }.joined(separator: ", "))",
            ])
        } catch {
            logger.error("could not reseed the restarted server: its envs go on with its own seed", metadata: ["strategist.error": "\(error)"])
        }
    }

    private func tick(_ k: Int, _ summary: inout RunSummary, limit: Int) {
        let snapshot = envs[k].feed.take()
        let id = envs[k].id
        for e in snapshot.ended where e.reason != "reset" && (limit == 0 || summary.ended < limit) {
            summary.ended += 1
            if e.success { summary.succeeded += 1 }
            summary.lines.append(String(format: "  env %d episode %d seed %llu: %@ after %d steps (%@), return %.2f", id, e.episodeIndex, e.seed,
                                        e.success ? "success" : "no success", e.steps, e.reason, e.return))
        }
        for e in snapshot.ended where e.reason != "reset" {
            if envs[k].inFlight == e.episodeIndex { envs[k].inFlight = nil }
            envs[k].nextEpisode = e.episodeIndex + 1
        }
        if snapshot.starts != envs[k].starts {
            // A new episode: forget the plan; a request still out for the old one is ignored when it answers.
            envs[k].starts = snapshot.starts
            envs[k].inFlight = snapshot.episode
            envs[k].forgetPlan()
        }
        guard let bar = snapshot.bar, let slot = snapshot.slot, let tool = snapshot.tool else { return }
        // A strategy that came back for this episode: publish and start it.
        let asking = envs[k].asking
        let answer = results.withLock { r -> (env: Int, decision: StrategyDecision?)? in
            r = r.filter { $0.value.env != id || $0.key == asking }   // answers to earlier episodes' requests
            return asking.flatMap { r.removeValue(forKey: $0) }
        }
        if let result = answer {
            envs[k].asking = nil
            if result.decision == nil { envs[k].retryAfter = snapshot.time + 0.5 }
            if let decision = result.decision {
                summary.decisions += 1
                if decision.rejection != nil { summary.fallbacks += 1 }
                envs[k].strategy.publish(Self.message(decision, time: snapshot.time))
                record(decision, env: id, episode: snapshot.episode, time: snapshot.time)
                envs[k].executor.start(decision.plan, tool: tool, time: snapshot.time)
                envs[k].idleSince = nil
            }
        }
        if !envs[k].executor.needsPlan { envs[k].idleSince = nil }
        if envs[k].executor.needsPlan && envs[k].asking == nil && snapshot.time >= envs[k].retryAfter {
            let idle = envs[k].idleSince ?? snapshot.time
            envs[k].idleSince = idle
            let resting = snapshot.barSpeed < 0.005 && snapshot.barTurnRate < 0.05
            guard resting || snapshot.time - idle >= Self.settleLimit else { return }
            let workspace = WorkspaceSummary(tbar: bar, slot: slot, tool: tool, limits: source.planner.limits)
            if !source.planner.done(workspace) {
                requests += 1
                let request = requests
                envs[k].asking = request
                Task { [self] in
                    let decision = await source.decide(workspace, env: id)
                    results.withLock { $0[request] = (id, decision) }
                }
            }
        }
        if let target = envs[k].executor.update(tool: tool, time: snapshot.time) {
            var m = GeometryMsgs_PoseStamped()
            m.header.frameID = "world"
            m.header.stamp = .init(seconds: snapshot.time)
            (m.pose.position.x, m.pose.position.y, m.pose.position.z) = (target.x, target.y, target.z)
            envs[k].target.publish(m)   // all-zero orientation: keep the tool pointing down
        }
    }

    static func message(_ d: StrategyDecision, time: Double) -> Robosim_Strategy {
        var m = Robosim_Strategy()
        m.header.frameID = "world"
        m.header.stamp = .init(seconds: time)
        m.backend = d.rejection == nil ? d.backend : "\(d.backend) (fallback)"
        m.pushSide = d.plan.pushSide
        m.contactPoint.x = d.plan.contactPoint[0]
        m.contactPoint.y = d.plan.contactPoint[1]
        m.direction.x = d.plan.direction[0]
        m.direction.y = d.plan.direction[1]
        m.waypoints = d.plan.waypoints.map { w in
            var p = GeometryMsgs_Pose()
            (p.position.x, p.position.y, p.position.z) = (w[0], w[1], w[2])
            p.orientation.w = 1
            return p
        }
        m.rationale = d.plan.rationale
        return m
    }

    /// One JSON line per strategy in the env's episode log: the prompt and reply when an LLM was
    /// asked, the plan used, and why an LLM's strategy was not used.
    private func record(_ d: StrategyDecision, env: Int, episode: UInt64?, time: Double) {
        guard let dir = logDir else { return }
        var line: [String: Any] = ["env": env, "episode": episode.map { Int($0) } ?? -1, "sim_time": time, "backend": d.backend,
                                   "push_side": d.plan.pushSide, "waypoints": d.plan.waypoints, "rationale": d.plan.rationale]
        if let r = d.request {
            line["system"] = r.system
            line["user"] = r.user
        }
        if let reply = d.reply { line["reply"] = reply }
        if let why = d.rejection { line["rejection"] = why }
        guard let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) else { return }
        let url = dir.appendingPathComponent("env_\(env)_episode_\(episode.map { String($0) } ?? "unknown").jsonl")
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        guard let handle = try? FileHandle(forWritingTo: url) else {
            logger.warning("cannot write the strategy log", metadata: ["strategist.file": "\(url.path)"])
            return
        }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: data + Data("\n".utf8))
    }
}
