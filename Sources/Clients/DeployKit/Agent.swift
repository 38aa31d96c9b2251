import ClientKit
import Foundation
import Logging
import Messaging
import TrainKit

/// What a robot's agent keeps on disk (`<state>/<robot>/state.json`, replaced atomically): the
/// version it runs, the one before, and the execution it is in the middle of. Writing this file is
/// the activation: a robot runs `active`, and `models/<active>.safetensors` (also linked as
/// `active.safetensors`) is its model.
public struct AgentState: Codable, Sendable, Equatable {
    public var active: String?
    public var previous: String?
    public var pending: Pending?

    public struct Pending: Codable, Sendable, Equatable {
        public var job: String
        public var version: String
        /// What the robot ran when the execution started: what it returns to.
        public var before: String?
        public var phase: Phase
        /// The health check's verdict and its words, once run.
        public var healthy: Bool?
        public var detail: String
    }

    /// Mender's states, as an agent passes them: started (downloading, verifying), installed (beside
    /// the running model), checked (the health check ran), committed (activated, not yet reported).
    public enum Phase: String, Codable, Sendable {
        case started, installed, checked, committed
    }
}

/// One robot's agent (`sim-deploy agent`): registers with the deployer, waits for notifications
/// (and polls), and for each execution downloads the release, checks its signature and checksum
/// (REJECTED when either fails), installs it beside the running model, runs the health check in the
/// robot's env, then commits (activates) or rolls back, reporting every step. Every step is saved
/// before it is reported, so an agent killed anywhere resumes where it was, and an execution that
/// ended without it (timed out, canceled) is rolled back when it learns of it.
public final class RobotAgent: @unchecked Sendable {
    // Invariant: `state` is read and written by the agent's own thread only (`run`); `wake` is the
    // only thing other threads touch.

    public struct Options: Sendable {
        public var robotID: String
        public var groups: [String]
        /// The agent's folder (`<state>/<robot>/` is this robot's).
        public var stateFolder: URL
        public var deployer: String
        /// The sim-server whose env is this robot, and its index there (nil: any free env).
        public var simServer: String
        public var envIndex: Int?
        public var key: VerifyingKey
        /// Seconds between polls of /deploy/next when no notification comes.
        public var poll: Double = 2
        /// Seconds the health check waits for a restarted sim-server (0: the check fails at once
        /// and is retried as any error). Episodes cut by the restart are played again, so the
        /// check's outcome is the one an uninterrupted check would have had.
        public var reconnectTimeout: Double = 60
        /// CURVE keys for the deployer and for the sim-server (nil: plaintext).
        public var deployerSecurity: ClientSecurity?
        public var simServerSecurity: ClientSecurity?
        public init(robotID: String, groups: [String], stateFolder: URL, deployer: String, simServer: String, envIndex: Int?, key: VerifyingKey) {
            self.robotID = robotID
            self.groups = groups
            self.stateFolder = stateFolder
            self.deployer = deployer
            self.simServer = simServer
            self.envIndex = envIndex
            self.key = key
        }
    }

    public let options: Options
    let folder: URL
    let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private(set) var state: AgentState

    public init(options: Options, logger: Logger) throws {
        try DeployNames.check(options.robotID, "robot id")
        self.options = options
        self.logger = logger
        folder = options.stateFolder.appendingPathComponent(options.robotID, isDirectory: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("models"), withIntermediateDirectories: true)
        state = try Self.load(folder.appendingPathComponent("state.json"))
        // A kill between saving the state and relinking (or dropping a model) is repaired here.
        removeUnusedModels()
    }

    static func load(_ url: URL) throws -> AgentState {
        guard FileManager.default.fileExists(atPath: url.path) else { return AgentState() }
        return try JSONDecoder().decode(AgentState.self, from: try Registry.bounded(url, limit: 1 << 20))
    }

    /// Wakes the agent for a notification.
    public func notified() { wake.signal() }

    /// Runs until the process ends.
    public func run() -> Never {
        var registered = false
        var delay = 0.5
        while true {
            do {
                let client = try ServiceClient(server: options.deployer, timeout: 3, security: options.deployerSecurity)
                if !registered {
                    var r = Robosim_DeployRegisterRequest()
                    r.robotID = options.robotID
                    r.groups = options.groups
                    r.activeVersion = state.active ?? ""
                    let _: Robosim_Empty = try client.call("/deploy/register", r)
                    registered = true
                    logger.info("\(options.robotID): registered (groups \(options.groups), running \(state.active ?? "nothing"))")
                }
                if let pending = state.pending { try reconcile(pending, client) }
                var request = Robosim_DeployNextRequest()
                request.robotID = options.robotID
                request.activeVersion = state.active ?? ""
                let next: Robosim_DeployNextResponse = try client.call("/deploy/next", request)
                delay = 0.5
                if next.hasExecution_p {
                    try handle(next.execution, client)
                    continue
                }
            } catch {
                // Register again once the deployer answers (it may be a new one, or have a new database).
                registered = false
                logger.warning("\(options.robotID): \(error); retrying in \(String(format: "%.1f", delay)) s")
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 5)
                continue
            }
            _ = wake.wait(timeout: .now() + options.poll)
        }
    }

    /// A pending execution the deployer no longer hands out (it ended while the agent was away, or
    /// the agent ended it and was killed before forgetting it): learn its status and settle.
    func reconcile(_ pending: AgentState.Pending, _ client: ServiceClient) throws {
        let answer: Robosim_DeployUpdateResponse
        do {
            answer = try report(client, pending, .IN_PROGRESS, phase: "resuming", detail: "the agent restarted")
        } catch let error as ServiceError where error.code == .notFound {
            // The deployer does not know the execution (another database): it ended without this robot.
            settle(pending, ended: .CANCELED)
            return
        }
        guard !answer.accepted, let status = ExecutionStatus(rawValue: answer.status) else { return }   // still in progress: /deploy/next resumes it
        settle(pending, ended: status)
    }

    /// Forgets an execution that ended `status`: keeps the new version if the robot committed it and
    /// the deployer recorded the end the robot reported; otherwise returns to what it ran before.
    func settle(_ pending: AgentState.Pending, ended status: ExecutionStatus) {
        var s = state
        let ownEnd = (status == .SUCCEEDED || status == .FAILED) && pending.phase == .committed
        if !ownEnd, s.active == pending.version, pending.before != pending.version {
            s.active = pending.before
            s.previous = nil
            recordActivation(pending.before, job: pending.job, why: "rolled back: \(status.rawValue)")
            logger.warning("\(options.robotID): job \(pending.job) ended \(status.rawValue) without this robot's report; rolled back to \(pending.before ?? "nothing")")
        }
        s.pending = nil
        save(s)
        removeUnusedModels()
    }

    /// Works an execution from wherever its saved phase says, to its end.
    func handle(_ execution: Robosim_DeployExecution, _ client: ServiceClient) throws {
        guard Registry.isValidVersion(execution.version), execution.robotID == options.robotID else {
            throw DeployError("the deployer sent an execution for \(execution.robotID) of version '\(execution.version.prefix(80))'")
        }
        if let other = state.pending, other.job != execution.jobID {
            // A robot has one execution in progress at a time: the one it kept has ended. Settle it
            // (roll back if it ended without this robot) before starting the next from the right version.
            try reconcile(other, client)
            if state.pending == other { settle(other, ended: .CANCELED) }
        }
        if state.pending?.job != execution.jobID {
            var s = state
            s.pending = .init(job: execution.jobID, version: execution.version, before: state.active, phase: .started, healthy: nil, detail: "")
            save(s)
        }
        while let pending = state.pending, pending.job == execution.jobID {
            switch pending.phase {
            case .started:
                guard try accepted(report(client, pending, .IN_PROGRESS, phase: "downloading", detail: ""), pending) else { return }
                let verified: Data
                do {
                    verified = try download(execution.version, client)
                } catch let rejection as Rejection {
                    logger.warning("\(options.robotID): REJECTED \(execution.version): \(rejection)")
                    let answer = try report(client, pending, .REJECTED, phase: "rejected", detail: rejection.description)
                    settle(pending, ended: ExecutionStatus(rawValue: answer.status) ?? .REJECTED)
                    return
                }
                try AtomicFile.write(verified, to: model(execution.version))
                advance { $0.phase = .installed }
            case .installed:
                guard try accepted(report(client, pending, .IN_PROGRESS, phase: "validating", detail: "installed beside \(pending.before ?? "nothing")"), pending) else { return }
                let (healthy, detail) = try healthCheck(execution)
                advance {
                    $0.phase = .checked
                    $0.healthy = healthy
                    $0.detail = detail
                }
            case .checked:
                let keep = pending.healthy == true || execution.failurePolicy == FailurePolicy.DO_NOTHING.rawValue
                guard keep else {
                    // Never activated: rolling back is dropping the installed model.
                    let answer = try report(client, pending, .FAILED, phase: "rolled_back", detail: pending.detail + "; rolled back to \(pending.before ?? "nothing")")
                    settle(pending, ended: ExecutionStatus(rawValue: answer.status) ?? .FAILED)
                    return
                }
                guard try accepted(report(client, pending, .IN_PROGRESS, phase: "committing", detail: pending.detail), pending) else { return }
                var s = state
                if s.active != pending.version { s.previous = s.active }
                s.active = pending.version
                s.pending?.phase = .committed
                save(s)   // the activation
                link(pending.version)
                recordActivation(pending.version, job: pending.job, why: "committed")
                logger.info("\(options.robotID): activated \(pending.version) (\(pending.detail))")
            case .committed:
                let healthy = pending.healthy == true
                let answer = try report(client, pending, healthy ? .SUCCEEDED : .FAILED, phase: healthy ? "committed" : "left_active",
                                        detail: healthy ? pending.detail : pending.detail + "; DO_NOTHING: left active")
                settle(pending, ended: ExecutionStatus(rawValue: answer.status) ?? .FAILED)
                return
            }
        }
    }

    /// True when the deployer took the update; otherwise the execution ended without the robot and
    /// it settles (rolls back).
    func accepted(_ answer: Robosim_DeployUpdateResponse, _ pending: AgentState.Pending) -> Bool {
        if answer.accepted { return true }
        logger.warning("\(options.robotID): job \(pending.job) refused the update: \(answer.reason)")
        settle(pending, ended: ExecutionStatus(rawValue: answer.status) ?? .CANCELED)
        return false
    }

    func report(_ client: ServiceClient, _ pending: AgentState.Pending, _ status: ExecutionStatus, phase: String, detail: String) throws -> Robosim_DeployUpdateResponse {
        var r = Robosim_DeployUpdateRequest()
        r.jobID = pending.job
        r.robotID = options.robotID
        r.status = status.rawValue
        r.phase = phase
        r.detail = detail
        r.activeVersion = state.active ?? ""
        r.previousVersion = pending.before ?? ""
        return try client.call("/deploy/update", r)
    }

    /// Downloads the release's three files into `downloads/` and verifies them as the registry does.
    func download(_ version: String, _ client: ServiceClient) throws -> Data {
        let root = folder.appendingPathComponent("downloads", isDirectory: true)
        let target = root.appendingPathComponent("versions/\(version)", isDirectory: true)
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        for file in Registry.files {
            var data = Data()
            var total: UInt64 = 0
            var found = false
            repeat {
                var r = Robosim_DeployArtifactRequest()
                r.version = version
                r.file = file
                r.offset = UInt64(data.count)
                r.maxBytes = UInt32(Deployer.maxChunk)
                let chunk: Robosim_DeployArtifactResponse = try client.call("/deploy/artifact", r)
                guard chunk.found else { break }
                found = true
                total = chunk.totalSize
                guard total <= UInt64(Registry.maxArtifactBytes) else { throw Rejection.malformed("\(file) is \(total) bytes") }
                guard !chunk.data.isEmpty || UInt64(data.count) == total else { throw DeployError("the deployer sent an empty chunk of \(file)") }
                data.append(chunk.data)
                guard UInt64(data.count) <= total else { throw Rejection.malformed("\(file) grew while downloading") }
            } while UInt64(data.count) < total
            // A file the deployer does not have stays missing: verification names it.
            if found { try data.write(to: target.appendingPathComponent(file)) }
        }
        let (_, bytes) = try Registry(root: root).verify(version: version, key: options.key)
        return bytes
    }

    /// Runs the installed model for the job's episodes in the robot's env: healthy when its success
    /// rate reaches the threshold. A model that does not fit the task is unhealthy; a server that
    /// cannot be reached is an error (retried, the in-progress timeout bounds it).
    func healthCheck(_ e: Robosim_DeployExecution) throws -> (Bool, String) {
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.read(model(e.version)) } catch { return (false, "health check: the model cannot be read: \(error)") }
        // A lease that lapses 5 s after its last step: an agent killed mid-check frees its env soon.
        let client = try ServiceClient(server: options.simServer, timeout: 10, security: options.simServerSecurity)
        var vectorOptions = VectorEnv.Options(count: 1, clientName: "sim-deploy-agent", ttl: 5, transport: .socket,
                                              envIDs: options.envIndex.map { [UInt32($0)] }, reconnectTimeout: options.reconnectTimeout)
        vectorOptions.logger = logger
        let env = try VectorEnv(client: client, options: vectorOptions)
        defer { env.close() }
        let report: EvaluationReport
        do {
            report = try Evaluator.run(checkpoint, env: env, episodes: Int(e.healthEpisodes), seed: e.healthSeed)
        } catch let error as TrainError {
            return (false, "health check: \(error)")
        }
        let rate = report.successRate
        let healthy = rate >= e.healthThreshold
        return (healthy, String(format: "health check: success %.2f over %d episodes %@ threshold %.2f", rate, report.episodes.count, healthy ? ">=" : "<", e.healthThreshold))
    }

    /// Appends to `activations.log` (time, version, job, why): every version the robot ever ran,
    /// for audits and for the tests that check no robot ran a version it was not given.
    func recordActivation(_ version: String?, job: String, why: String) {
        let line = "\(Date().timeIntervalSince1970)\t\(version ?? "-")\t\(job)\t\(why)\n"
        let url = folder.appendingPathComponent("activations.log")
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return logger.warning("\(options.robotID): cannot append to \(url.path)") }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        fsync(fd)
        close(fd)
    }

    func model(_ version: String) -> URL { folder.appendingPathComponent("models/\(version).safetensors") }

    /// Points `active.safetensors` at the active model (a symbolic link replaced by rename).
    func link(_ version: String) {
        let link = folder.appendingPathComponent("active.safetensors"), temporary = folder.appendingPathComponent(".active.tmp")
        unlink(temporary.path)
        guard symlink("models/\(version).safetensors", temporary.path) == 0, rename(temporary.path, link.path) == 0 else {
            logger.warning("\(options.robotID): cannot link active.safetensors: \(String(cString: strerror(errno)))")
            return
        }
    }

    /// Deletes installed models that are neither active, previous nor pending.
    func removeUnusedModels() {
        let keep = Set([state.active, state.previous, state.pending?.version].compactMap { $0 })
        let models = folder.appendingPathComponent("models")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: models.path)) ?? [] where name.hasSuffix(".safetensors") {
            if !keep.contains(String(name.dropLast(".safetensors".count))) { try? FileManager.default.removeItem(at: models.appendingPathComponent(name)) }
        }
        if let active = state.active { link(active) } else { unlink(folder.appendingPathComponent("active.safetensors").path) }
    }

    private func advance(_ change: (inout AgentState.Pending) -> Void) {
        var s = state
        if var p = s.pending {
            change(&p)
            s.pending = p
        }
        save(s)
    }

    /// Saves the state atomically (a failure to save stops the agent: it must never act on a state it could not keep).
    private func save(_ s: AgentState) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try AtomicFile.write(try encoder.encode(s), to: folder.appendingPathComponent("state.json"))
            state = s
        } catch {
            logger.critical("\(options.robotID): cannot save the agent's state: \(error)")
            exit(1)
        }
    }
}

/// Several robots' agents in one process (`sim-deploy agent --robot-id A --robot-id B ...`): a
/// thread per robot and one subscription to `/deploy/notify` that wakes the robot named.
public final class AgentGroup: Sendable {
    public let agents: [RobotAgent]
    let deployer: String
    let security: ClientSecurity?
    let logger: Logger

    /// `security`: CURVE keys for the deployer (nil: plaintext).
    public init(agents: [RobotAgent], deployer: String, security: ClientSecurity? = nil, logger: Logger) {
        self.agents = agents
        self.deployer = deployer
        self.security = security
        self.logger = logger
    }

    /// Runs the agents; never returns.
    public func run() -> Never {
        let byID = Dictionary(uniqueKeysWithValues: agents.map { ($0.options.robotID, $0) })
        for agent in agents {
            let thread = Thread { agent.run() }
            thread.name = "sim-deploy.agent.\(agent.options.robotID)"
            thread.start()
        }
        // Notifications only speed agents up (they poll too): subscribe when the deployer answers.
        var delay = 0.5
        while true {
            do {
                let node = try Node(name: "sim_deploy_agent", server: deployer, security: security)
                let subscription = try node.onMessage("/deploy/notify", Robosim_DeployNotification.self) { n in byID[n.robotID]?.notified() }
                withExtendedLifetime((node, subscription)) { while true { Thread.sleep(forTimeInterval: 3600) } }
            } catch {
                logger.debug("notifications: \(error); retrying")
                Thread.sleep(forTimeInterval: delay)
                delay = min(2 * delay, 10)
            }
        }
    }
}
