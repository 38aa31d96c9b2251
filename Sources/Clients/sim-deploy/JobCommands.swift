import ArgumentParser
import DeployKit
import Foundation
import Logging
import Messaging

/// Where the jobs live: `--db` (default `SIM_DEPLOY_DB`, else `deploy.sqlite`).
struct DatabaseOption: ParsableArguments {
    @Option(help: "The deployer's SQLite file (default: SIM_DEPLOY_DB, else deploy.sqlite).")
    var db: String = ProcessInfo.processInfo.environment["SIM_DEPLOY_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "deploy.sqlite"

    func open() throws -> JobStore { try JobStore(path: db) }
}

struct RunDeployer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployer",
        abstract: "Run the deployer: serve robots' agents (/deploy/register, next, update, artifact; /deploy/notify) and apply the jobs' rollout, timeout and abort rules.",
        discussion: "Its state is the SQLite file: restarted with the same arguments after any crash, it goes on where it was.")

    @OptionGroup var database: DatabaseOption

    @Option(help: "The registry folder the agents download releases from.")
    var registry: String

    @Option(help: "Address the agents call (tcp://HOST:PORT; loopback unless you name another interface).")
    var listen = "tcp://127.0.0.1:7900"

    @Option(help: "Seconds between passes over the jobs (0.05-10).")
    var tick = 0.2

    @Option(help: "The deployer's key pair (a .secret file from simctl keys generate): its sockets use CURVE. Default: ROBOSIM_KEY.")
    var key: String?

    @Option(help: "Agents' public keys admitted with --key: a .pub file, a file of keys or a directory of *.pub files. Repeatable. Default: ROBOSIM_ALLOW (colon-separated).")
    var allow: [String] = []

    @Flag(help: "Allow listening beyond loopback without --key: plaintext, no authentication.")
    var insecure = false

    func run() throws {
        guard tick >= 0.05, tick <= 10 else { throw ValidationError("--tick must be 0.05-10 s") }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let security = try ServerSecurity.resolve(key: key, allow: allow)
        let deployer = try Deployer(store: try database.open(), registry: Registry(root: URL(fileURLWithPath: registry)), listen: listen, interval: tick,
                                    security: security, allowInsecure: insecure)
        FileHandle.standardError.write(Data("sim-deploy: deployer on \(deployer.hub.serviceEndpoint), jobs in \(database.db)\n".utf8))
        for signal in [SIGINT, SIGTERM] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler { Thread { deployer.stop(); Foundation.exit(0) }.start() }
            source.resume()
            retained.append(source)
        }
        deployer.run()
    }
}

/// Signal sources live as long as the process.
nonisolated(unsafe) var retained: [any DispatchSourceSignal] = []

struct CreateJob: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-job",
        abstract: "Create a job that deploys a version to robots and groups (SCHEDULED; the deployer starts it).",
        discussion: """
            sim-deploy create-job --version 1.1.0 --targets fleet --max-per-minute 30 --abort FAILED:20:5 --in-progress-timeout 300
            sim-deploy create-job --version 1.1.0 --targets r0 r1 r2 --exponential-base 6 --increment-factor 2 --notified-threshold 4
            """)

    @OptionGroup var database: DatabaseOption

    @Option(help: "The release to deploy.")
    var version: String

    @Option(parsing: .upToNextOption, help: "Robot ids and group names (a group expands to the robots registered in it now).")
    var targets: [String]

    @Option(name: .customLong("job-id"), help: "The job's id (default: job-<UTC time>-<random>).")
    var jobID: String?

    @Option(name: .customLong("max-per-minute"), help: "Robots notified per minute, 1-1000 (the cap of an exponential rate).")
    var maxPerMinute = 1000

    @Option(name: .customLong("exponential-base"), help: "Exponential rollout: robots per minute to start with, 1-1000.")
    var exponentialBase: Int?

    @Option(name: .customLong("increment-factor"), help: "Exponential rollout: the rate's factor, 1.1-5.")
    var incrementFactor = 2.0

    @Option(name: .customLong("notified-threshold"), help: "Exponential rollout: raise the rate after this many more robots were notified.")
    var notifiedThreshold: Int?

    @Option(name: .customLong("succeeded-threshold"), help: "Exponential rollout: raise the rate after this many more robots succeeded.")
    var succeededThreshold: Int?

    @Option(help: "Abort criterion TYPE:PERCENT:MIN (TYPE FAILED, REJECTED, TIMED_OUT or ALL; action: cancel). Repeatable.")
    var abort: [String] = []

    @Option(name: .customLong("in-progress-timeout"), help: "Seconds an execution may stay IN_PROGRESS before it is TIMED_OUT.")
    var inProgressTimeout = 600.0

    @Option(name: .customLong("failure-policy"), help: "ROLLBACK (default) or DO_NOTHING when a robot's health check fails.")
    var failurePolicy = "ROLLBACK"

    @Option(name: .customLong("health-episodes"), help: "Episodes of each robot's health check.")
    var healthEpisodes = 5

    @Option(name: .customLong("health-threshold"), help: "Success rate the health check needs, 0-1.")
    var healthThreshold = 0.8

    @Option(name: .customLong("health-seed"), help: "Seed of the health check's episodes.")
    var healthSeed: UInt64 = 1_000_000

    @Option(help: "A registry folder: check that the version is published there.")
    var registry: String?

    @Flag(name: .customLong("allow-unregistered"), help: "Take a target that is neither a registered robot nor a group as a robot id that registers later.")
    var allowUnregistered = false

    func run() throws {
        guard let policy = FailurePolicy(rawValue: failurePolicy.uppercased()) else { throw ValidationError("--failure-policy is ROLLBACK or DO_NOTHING") }
        if let registry, !Registry(root: URL(fileURLWithPath: registry)).releases().contains(where: { $0.manifest.version == version }) {
            throw ValidationError("version \(version) is not published in \(registry)")
        }
        var rollout = RolloutConfig(maxPerMinute: maxPerMinute)
        if let base = exponentialBase {
            guard (notifiedThreshold == nil) != (succeededThreshold == nil) else {
                throw ValidationError("an exponential rollout needs one of --notified-threshold and --succeeded-threshold")
            }
            rollout.exponential = .init(basePerMinute: base, incrementFactor: incrementFactor, threshold: notifiedThreshold ?? succeededThreshold!,
                                        countSucceeded: succeededThreshold != nil)
        }
        let document = JobDocument(version: version, failurePolicy: policy, healthEpisodes: healthEpisodes, healthThreshold: healthThreshold,
                                   healthSeed: healthSeed, inProgressTimeout: inProgressTimeout, rollout: rollout,
                                   abort: try abort.map(AbortCriterion.init(parsing:)))
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let id = jobID ?? "job-\(formatter.string(from: Date()))-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        let store = try database.open()
        do {
            let job = try store.createJob(id: id, document: document, targets: targets, allowUnregistered: allowUnregistered)
            let count = try store.executions(job: job.id).count
            print(job.id)
            FileHandle.standardError.write(Data("sim-deploy: created job \(job.id): \(version) to \(count) robots\n".utf8))
        } catch let error as DeployError {
            throw ValidationError(error.description)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A job's state: executions per state, each robot's status, step and active version; --watch follows it with a progress bar until it ends.")

    @OptionGroup var database: DatabaseOption

    @Argument(help: "The job id (none: list the jobs).")
    var job: String?

    @Flag(help: "JSON instead of a table.")
    var json = false

    @Flag(help: "Follow the job with a progress bar on stderr until it ends, then print its state.")
    var watch = false

    func run() throws {
        let store = try database.open()
        guard let job else {
            for j in try store.jobs() {
                let counts = try JobReport.counts(store.executions(job: j.id))
                print([j.id, j.status.rawValue, j.document.version, counts.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")].joined(separator: "  "))
            }
            return
        }
        guard try store.job(job) != nil else { throw ValidationError("no job \(job) in \(database.db)") }
        if watch {
            while true {
                let report = try JobReport(store: store, job: job)
                let ended = report.executions.filter { $0.status.isTerminal }.count, total = max(1, report.executions.count)
                let width = 30, filled = width * ended / total
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                let line = "\r\(job) \(report.job.status.rawValue) [\(bar)] \(ended)/\(report.executions.count)  " +
                    report.counts.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ") + "   "
                FileHandle.standardError.write(Data(line.utf8))
                if report.job.status == .COMPLETED || report.job.status == .CANCELED, report.executions.allSatisfy({ $0.status.isTerminal }) { break }
                Thread.sleep(forTimeInterval: 0.5)
            }
            FileHandle.standardError.write(Data("\n".utf8))
        }
        let report = try JobReport(store: store, job: job)
        print(json ? try report.json() : report.table())
    }
}

/// A job with its executions and robots, for `status`.
struct JobReport {
    let job: Job
    let executions: [Execution]
    let robots: [String: Robot]
    var counts: [String: Int] { Self.counts(executions) }

    init(store: JobStore, job id: String) throws {
        guard let job = try store.job(id) else { throw ValidationError("no job \(id)") }
        self.job = job
        executions = try store.executions(job: id)
        robots = Dictionary(uniqueKeysWithValues: try store.robots().map { ($0.id, $0) })
    }

    static func counts(_ executions: [Execution]) -> [String: Int] {
        Dictionary(grouping: executions, by: \.status.rawValue).mapValues(\.count)
    }

    func json() throws -> String {
        let object: [String: Any] = [
            "job": job.id, "status": job.status.rawValue, "version": job.document.version, "reason": job.reason ?? "",
            "created": job.created, "started": job.started ?? NSNull(), "finished": job.finished ?? NSNull(),
            "rollback_of": job.rollbackOf ?? NSNull(), "counts": counts,
            "executions": executions.map { e -> [String: Any] in
                ["robot": e.robotID, "status": e.status.rawValue, "phase": e.phase, "detail": e.detail,
                 "active_version": robots[e.robotID]?.activeVersion ?? NSNull(), "previous_version": e.previousVersion ?? NSNull(),
                 "queued_at": e.queuedAt, "notified_at": e.notifiedAt ?? NSNull(), "started_at": e.startedAt ?? NSNull(),
                 "finished_at": e.finishedAt ?? NSNull(), "version_number": e.versionNumber]
            },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func table() -> String {
        var lines = ["job \(job.id): \(job.status.rawValue), version \(job.document.version)\(job.reason.map { " (\($0))" } ?? "")",
                     counts.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")]
        for e in executions {
            lines.append([e.robotID, e.status.rawValue, e.phase.isEmpty ? "-" : e.phase, "active \(robots[e.robotID]?.activeVersion ?? "none")", e.detail]
                .joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a job (queued executions CANCELED, or REMOVED when never notified), or one robot's execution with --robot; --force cancels those in progress too (their agents roll back).")

    @OptionGroup var database: DatabaseOption

    @Argument(help: "The job id.")
    var job: String

    @Option(help: "Cancel only this robot's execution.")
    var robot: String?

    @Flag(help: "Also cancel executions in progress.")
    var force = false

    @Option(help: "Why (kept in the transition log).")
    var reason = "canceled by the operator"

    func run() throws {
        let store = try database.open()
        do {
            if let robot {
                try store.cancel(job: job, robot: robot, force: force, reason: reason)
            } else {
                try store.cancel(job: job, force: force, reason: reason)
            }
        } catch let error as DeployError {
            throw ValidationError(error.description)
        }
        FileHandle.standardError.write(Data("sim-deploy: canceled \(job)\(robot.map { " for \($0)" } ?? "")\n".utf8))
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll a finished job back: new jobs that return each robot it left on its version to the version it ran before.")

    @OptionGroup var database: DatabaseOption

    @Argument(help: "The job id.")
    var job: String

    func run() throws {
        let jobs: [Job]
        do { jobs = try database.open().rollback(job: job) } catch let error as DeployError { throw ValidationError(error.description) }
        guard !jobs.isEmpty else { throw ValidationError("job \(job) left no robot on its version with a version to return to") }
        for j in jobs {
            print(j.id)
            FileHandle.standardError.write(Data("sim-deploy: created \(j.id): back to \(j.document.version) on \(j.targets.count) robots\n".utf8))
        }
    }
}

struct DescribeExecution: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe-execution",
        abstract: "One robot's execution of a job, with its transitions.")

    @OptionGroup var database: DatabaseOption

    @Argument(help: "The job id.")
    var job: String

    @Argument(help: "The robot id.")
    var robot: String

    @Flag(help: "JSON instead of text.")
    var json = false

    func run() throws {
        let store = try database.open()
        guard let e = try store.execution(job: job, robot: robot) else { throw ValidationError("job \(job) has no execution for robot \(robot)") }
        let transitions = try store.transitions(job: job, robot: robot)
        let active = try store.robots().first { $0.id == robot }?.activeVersion
        if json {
            let object: [String: Any] = [
                "job": e.jobID, "robot": e.robotID, "status": e.status.rawValue, "phase": e.phase, "detail": e.detail,
                "version_number": e.versionNumber, "active_version": active ?? NSNull(), "previous_version": e.previousVersion ?? NSNull(),
                "queued_at": e.queuedAt, "notified_at": e.notifiedAt ?? NSNull(), "started_at": e.startedAt ?? NSNull(), "finished_at": e.finishedAt ?? NSNull(),
                "transitions": transitions.map { ["sequence": $0.sequence, "at": $0.at, "from": $0.from ?? NSNull(), "to": $0.to, "reason": $0.reason] as [String: Any] },
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("\(e.jobID)/\(e.robotID): \(e.status.rawValue), step \(e.phase.isEmpty ? "-" : e.phase), active \(active ?? "none"), before \(e.previousVersion ?? "-")")
        if !e.detail.isEmpty { print("  \(e.detail)") }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for t in transitions {
            print("  \(formatter.string(from: Date(timeIntervalSince1970: t.at)))  \(t.from ?? "-") -> \(t.to)  \(t.reason)")
        }
    }
}
