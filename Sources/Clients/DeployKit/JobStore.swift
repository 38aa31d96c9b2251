import Foundation
import GRDB

/// Jobs, executions, robots and the transition log in one SQLite file (GRDB, WAL, synchronous FULL),
/// shared by the deployer and the command-line tools. Every status change happens in one
/// transaction with its row of the log, after re-reading the status inside that transaction, so a
/// process killed at any point leaves either the whole transition or none, and a transition is never
/// made twice (the log also has a unique key on job, robot and new status).
public final class JobStore: Sendable {
    let database: DatabaseQueue
    public let path: String

    /// Bounds on what a job may hold, so that no command or agent grows the database without limit.
    public static let maxTargets = 10_000
    public static let maxDetailBytes = 1024

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        database = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE jobs(
                  id TEXT PRIMARY KEY, status TEXT NOT NULL, document TEXT NOT NULL, targets TEXT NOT NULL,
                  created REAL NOT NULL, started REAL, finished REAL, reason TEXT, next_notify_at REAL, rollback_of TEXT);
                CREATE TABLE executions(
                  job_id TEXT NOT NULL REFERENCES jobs(id), robot_id TEXT NOT NULL, status TEXT NOT NULL,
                  version_number INTEGER NOT NULL, queued_at REAL NOT NULL, notified_at REAL, started_at REAL, finished_at REAL,
                  phase TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', previous_version TEXT,
                  PRIMARY KEY(job_id, robot_id));
                CREATE INDEX executions_by_robot ON executions(robot_id, status);
                CREATE TABLE transitions(
                  sequence INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, job_id TEXT NOT NULL, robot_id TEXT NOT NULL,
                  from_status TEXT, to_status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
                  UNIQUE(job_id, robot_id, to_status));
                CREATE TABLE robots(id TEXT PRIMARY KEY, groups TEXT NOT NULL, active_version TEXT, last_seen REAL NOT NULL);
                """)
        }
        migrator.registerMigration("v2-indexes") { db in
            try db.execute(sql: """
                CREATE INDEX executions_by_status ON executions(status, job_id);
                CREATE INDEX jobs_by_status ON jobs(status);
                """)
        }
        try migrator.migrate(database)
    }

    /// Robots the store keeps at most (`/deploy/register` beyond it is refused).
    public static let maxRobots = 100_000

    // MARK: Jobs

    /// Creates a SCHEDULED job with a QUEUED execution per target robot: registered robot ids, and
    /// group names expanded to the robots registered in them now (IoT's snapshot targets). A target
    /// that is neither is refused, unless `allowUnregistered` (the robot registers later).
    @discardableResult
    public func createJob(id: String, document: JobDocument, targets: [String], rollbackOf: String? = nil, allowUnregistered: Bool = false,
                          now: Double = Date().timeIntervalSince1970) throws -> Job {
        try database.write { db in
            try Self.insertJob(db, id: id, document: document, targets: targets, rollbackOf: rollbackOf, allowUnregistered: allowUnregistered, now: now)
        }
    }

    static func insertJob(_ db: Database, id: String, document: JobDocument, targets: [String], rollbackOf: String?, allowUnregistered: Bool,
                          now: Double) throws -> Job {
        try DeployNames.check(id, "job id")
        try document.validate()
        guard !targets.isEmpty, targets.count <= maxTargets else { throw DeployError("a job needs 1-\(maxTargets) targets, got \(targets.count)") }
        for t in targets { try DeployNames.check(t, "target") }
        guard try Int.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [id]) == nil else {
            throw DeployError("job \(id) exists: job ids are never reused")
        }
        let robots = try Self.robots(db)
        let registered = Set(robots.map(\.id))
        var members: [String: [String]] = [:]
        for r in robots { for g in r.groups { members[g, default: []].append(r.id) } }
        var chosen: [String] = []
        var seen = Set<String>()
        for target in targets {
            let expanded: [String]
            if let group = members[target] {
                expanded = group
            } else if registered.contains(target) || allowUnregistered {
                expanded = [target]
            } else {
                throw DeployError("target '\(target)' is neither a registered robot nor a group of registered robots (start its agents first, or allow unregistered robots)")
            }
            for robot in expanded where seen.insert(robot).inserted { chosen.append(robot) }
        }
        guard chosen.count <= maxTargets else { throw DeployError("the targets name \(chosen.count) robots; at most \(maxTargets)") }
        try db.execute(sql: "INSERT INTO jobs(id, status, document, targets, created, rollback_of) VALUES (?, 'SCHEDULED', ?, ?, ?, ?)",
                       arguments: [id, try json(document), try json(targets), now, rollbackOf])
        try log(db, at: now, job: id, robot: nil, from: nil, to: JobStatus.SCHEDULED.rawValue, reason: "created")
        for robot in chosen {
            try db.execute(sql: "INSERT INTO executions(job_id, robot_id, status, version_number, queued_at) VALUES (?, ?, 'QUEUED', 1, ?)",
                           arguments: [id, robot, now])
            try log(db, at: now, job: id, robot: robot, from: nil, to: ExecutionStatus.QUEUED.rawValue, reason: "created")
        }
        return Job(id: id, status: .SCHEDULED, document: document, targets: targets, created: now, started: nil, finished: nil, reason: nil, rollbackOf: rollbackOf)
    }

    public func job(_ id: String) throws -> Job? {
        try database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Self.job) }
    }

    public func jobs() throws -> [Job] {
        try database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM jobs ORDER BY created, id").map(Self.job) }
    }

    public func executions(job: String) throws -> [Execution] {
        try database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM executions WHERE job_id = ? ORDER BY robot_id", arguments: [job]).map(Self.execution) }
    }

    public func execution(job: String, robot: String) throws -> Execution? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM executions WHERE job_id = ? AND robot_id = ?", arguments: [job, robot]).map(Self.execution)
        }
    }

    /// The transition log, oldest first (of one job, and one robot of it, when given).
    public func transitions(job: String? = nil, robot: String? = nil) throws -> [Transition] {
        try database.read { db in
            var sql = "SELECT * FROM transitions WHERE 1"
            var arguments: StatementArguments = []
            if let job { sql += " AND job_id = ?"; arguments += [job] }
            if let robot { sql += " AND robot_id = ?"; arguments += [robot] }
            return try Row.fetchAll(db, sql: sql + " ORDER BY sequence", arguments: arguments).map { row in
                let robotID: String = row["robot_id"]
                return Transition(sequence: row["sequence"], at: row["at"], jobID: row["job_id"], robotID: robotID.isEmpty ? nil : robotID,
                                  from: row["from_status"], to: row["to_status"], reason: row["reason"])
            }
        }
    }

    public func robots() throws -> [Robot] { try database.read { db in try Self.robots(db) } }

    /// Cancels a job (`sim-deploy cancel`): executions queued and notified become CANCELED, queued
    /// ones never notified REMOVED; with `force`, executions in progress become CANCELED too (their
    /// agents roll back when they next report). Robots already finished keep their result.
    public func cancel(job id: String, force: Bool, reason: String, now: Double = Date().timeIntervalSince1970) throws {
        try database.write { db in
            guard let job = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Self.job) else { throw DeployError("no job \(id)") }
            let reason = Self.cut(reason, Self.maxDetailBytes)
            if job.status == .CANCELED, force {
                // An aborted or canceled job whose robots are still installing: stop them too.
                let open = try Row.fetchAll(db, sql: "SELECT * FROM executions WHERE job_id = ? AND status = 'IN_PROGRESS'", arguments: [id]).map(Self.execution)
                guard !open.isEmpty else { throw DeployError("job \(id) is CANCELED and no robot is still installing it") }
                for e in open { try Self.move(db, e, to: .CANCELED, reason: reason, now: now) }
                return
            }
            guard job.status == .SCHEDULED || job.status == .IN_PROGRESS else { throw DeployError("job \(id) is \(job.status.rawValue): only a scheduled or running job can be canceled") }
            try Self.cancel(db, job: job, force: force, reason: reason, now: now)
        }
    }

    /// Cancels one robot's execution (`sim-deploy cancel JOB --robot R`).
    public func cancel(job id: String, robot: String, force: Bool, reason: String, now: Double = Date().timeIntervalSince1970) throws {
        try database.write { db in
            guard let e = try Row.fetchOne(db, sql: "SELECT * FROM executions WHERE job_id = ? AND robot_id = ?", arguments: [id, robot]).map(Self.execution) else {
                throw DeployError("job \(id) has no execution for robot \(robot)")
            }
            switch e.status {
            case .QUEUED: try Self.move(db, e, to: e.notifiedAt == nil ? .REMOVED : .CANCELED, reason: reason, now: now)
            case .IN_PROGRESS where force: try Self.move(db, e, to: .CANCELED, reason: reason, now: now)
            case .IN_PROGRESS: throw DeployError("robot \(robot) is installing; cancel it with --force (its agent then rolls back)")
            default: throw DeployError("robot \(robot)'s execution already ended \(e.status.rawValue)")
            }
        }
    }

    /// `sim-deploy rollback JOB`: new jobs that put every robot the job left on its version (it
    /// SUCCEEDED, or FAILED under DO_NOTHING and kept it) back on the version it ran before, one job
    /// per previous version, with the job's own settings. Returns them (none: nothing to roll back).
    public func rollback(job id: String, now: Double = Date().timeIntervalSince1970) throws -> [Job] {
        try database.write { db in
            guard let job = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Self.job) else { throw DeployError("no job \(id)") }
            guard job.status == .COMPLETED || job.status == .CANCELED else { throw DeployError("job \(id) is \(job.status.rawValue): roll back a job that ended (cancel it first)") }
            let active = Dictionary(uniqueKeysWithValues: try Self.robots(db).map { ($0.id, $0.activeVersion) })
            var byPrevious: [String: [String]] = [:]
            let executions = try Row.fetchAll(db, sql: "SELECT * FROM executions WHERE job_id = ? ORDER BY robot_id", arguments: [id]).map(Self.execution)
            // Robots the job left on its version and that are still on it (a later job may have moved them).
            for e in executions where (e.status == .SUCCEEDED || e.status == .FAILED) && active[e.robotID] == job.document.version {
                guard let previous = e.previousVersion, !previous.isEmpty, previous != job.document.version else { continue }
                byPrevious[previous, default: []].append(e.robotID)
            }
            var created: [Job] = []
            for (n, (previous, targets)) in byPrevious.sorted(by: { $0.key < $1.key }).enumerated() {
                var document = job.document
                document.version = previous
                // Going back to a version that ran is not held to the rollout's abort criteria.
                document.abort = []
                let suffix = "-rollback" + (n == 0 ? "" : "-\(n + 1)")
                created.append(try Self.insertJob(db, id: String(id.prefix(128 - suffix.count)) + suffix, document: document, targets: targets,
                                                  rollbackOf: id, allowUnregistered: true, now: now))
            }
            return created
        }
    }

    // MARK: The deployer's rules

    /// What a tick decided to tell robots (published on /deploy/notify after the transaction).
    public struct Notification: Sendable, Equatable {
        public var robotID: String
        public var jobID: String
    }

    /// One pass of the deployer: starts scheduled jobs, times out executions in progress too long,
    /// aborts jobs whose criteria trip, notifies robots at the rollout rate, and completes jobs whose
    /// executions all ended. Each step is its own transaction over freshly read state, so a pass cut
    /// short anywhere is finished by the next one.
    ///
    /// - Parameters:
    ///   - burst: seconds of rollout the rate bucket holds (at least the tick interval): late ticks
    ///     within it lose nothing, and a deployer that was down catches up at most this much.
    ///   - timeoutsFrom: no execution times out before this time (a deployer that restarts gives
    ///     agents a grace to report before counting an outage against them).
    ///   - failed: told about a job whose pass failed; the other jobs still get theirs.
    public func tick(now: Double = Date().timeIntervalSince1970, burst: Double = 1, timeoutsFrom: Double = 0,
                     failed: (String, any Error) -> Void = { _, _ in }) throws -> [Notification] {
        var notifications: [Notification] = []
        // Running jobs, and canceled ones whose robots are still finishing (their timeouts still apply).
        let ids = try database.read { db in
            try String.fetchAll(db, sql: """
                SELECT id FROM jobs WHERE status IN ('SCHEDULED', 'IN_PROGRESS')
                   OR id IN (SELECT DISTINCT job_id FROM executions WHERE status = 'IN_PROGRESS') ORDER BY created, id
                """)
        }
        for id in ids {
          do {
            notifications += try database.write { db -> [Notification] in
                guard var job = try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(Self.job) else { return [] }
                if job.status == .SCHEDULED {
                    try db.execute(sql: "UPDATE jobs SET status = 'IN_PROGRESS', started = ?, next_notify_at = ? WHERE id = ?", arguments: [now, now, id])
                    try Self.log(db, at: now, job: id, robot: nil, from: JobStatus.SCHEDULED.rawValue, to: JobStatus.IN_PROGRESS.rawValue, reason: "started")
                    job.status = .IN_PROGRESS
                }
                guard job.status == .IN_PROGRESS || job.status == .CANCELED else { return [] }
                // Executions in progress past their timeout.
                let stale = now < timeoutsFrom ? [] : try Row.fetchAll(
                    db, sql: "SELECT * FROM executions WHERE job_id = ? AND status = 'IN_PROGRESS' AND started_at <= ?",
                    arguments: [id, now - job.document.inProgressTimeout]).map(Self.execution)
                for e in stale {
                    try Self.move(db, e, to: .TIMED_OUT, reason: "in progress longer than \(String(format: "%g", job.document.inProgressTimeout)) s", now: now)
                }
                guard job.status == .IN_PROGRESS else { return [] }
                let executions = try Row.fetchAll(db, sql: "SELECT * FROM executions WHERE job_id = ?", arguments: [id]).map(Self.execution)
                // Abort criteria.
                let executed = executions.filter { $0.status.isExecuted }
                for criterion in job.document.abort {
                    if let reason = criterion.trips(executed: executed.count, failures: executed.filter { criterion.failureType.counts($0.status) }.count) {
                        try Self.cancel(db, job: job, force: false, reason: reason, now: now)
                        return []
                    }
                }
                // Notifications at the rollout rate.
                var sent: [Notification] = []
                let waiting = executions.filter { $0.status == .QUEUED && $0.notifiedAt == nil }.sorted { $0.robotID < $1.robotID }
                if !waiting.isEmpty {
                    var notified = executions.filter { $0.notifiedAt != nil }.count
                    let succeeded = executions.filter { $0.status == .SUCCEEDED }.count
                    let rate = job.document.rollout.rate(notified: notified, succeeded: succeeded)
                    let storedNext = try Double.fetchOne(db, sql: "SELECT next_notify_at FROM jobs WHERE id = ?", arguments: [id]) ?? now
                    // A token bucket `burst` seconds deep: ticks that come late by less lose nothing, and a
                    // deployer that was down catches up that much, not the gap. A clock set back does
                    // not stall the rollout by more than one interval.
                    var next = min(max(storedNext, now - max(burst, 0)), now + 60 / rate)
                    for e in waiting {
                        guard next <= now else { break }
                        try db.execute(sql: "UPDATE executions SET notified_at = ?, version_number = version_number + 1 WHERE job_id = ? AND robot_id = ?",
                                       arguments: [now, id, e.robotID])
                        notified += 1
                        next += 60 / job.document.rollout.rate(notified: notified, succeeded: succeeded)
                        sent.append(Notification(robotID: e.robotID, jobID: id))
                    }
                    try db.execute(sql: "UPDATE jobs SET next_notify_at = ? WHERE id = ?", arguments: [next, id])
                }
                // Completion.
                if executions.allSatisfy({ $0.status.isTerminal }) {
                    try db.execute(sql: "UPDATE jobs SET status = 'COMPLETED', finished = ? WHERE id = ?", arguments: [now, id])
                    try Self.log(db, at: now, job: id, robot: nil, from: JobStatus.IN_PROGRESS.rawValue, to: JobStatus.COMPLETED.rawValue, reason: "every execution ended")
                }
                return sent
            }
          } catch {
            failed(id, error)
          }
        }
        return notifications
    }

    /// A robot's agent says who it is (`/deploy/register`), or is heard from.
    public func register(robot: String, groups: [String]?, activeVersion: String?, now: Double = Date().timeIntervalSince1970) throws {
        try DeployNames.check(robot, "robot id")
        if let groups {
            guard groups.count <= 64 else { throw DeployError("a robot may be in at most 64 groups") }
            for g in groups { try DeployNames.check(g, "group") }
        }
        if let activeVersion, !activeVersion.isEmpty, !Registry.isValidVersion(activeVersion) { throw DeployError("active version '\(activeVersion.prefix(80))' is not a version name") }
        try database.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM robots WHERE id = ?", arguments: [robot]) == nil {
                guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM robots") ?? 0 < Self.maxRobots else {
                    throw DeployError("the fleet has \(Self.maxRobots) robots, the most one deployer keeps")
                }
                try db.execute(sql: "INSERT INTO robots(id, groups, active_version, last_seen) VALUES (?, '[]', NULL, ?)", arguments: [robot, now])
            }
            try Self.heard(db, robot: robot, groups: groups, activeVersion: activeVersion, now: now)
        }
    }

    /// IoT's StartNextPendingJobExecution: the robot's execution in progress, else its oldest
    /// notified queued execution of a running job, moved to IN_PROGRESS; nil when it has none.
    public func startNext(robot: String, activeVersion: String?, now: Double = Date().timeIntervalSince1970) throws -> (Execution, JobDocument)? {
        try DeployNames.check(robot, "robot id")
        if let activeVersion, !activeVersion.isEmpty, !Registry.isValidVersion(activeVersion) { throw DeployError("active version '\(activeVersion.prefix(80))' is not a version name") }
        return try database.write { db in
            try Self.heard(db, robot: robot, groups: nil, activeVersion: activeVersion, now: now)
            if let row = try Row.fetchOne(db, sql: """
                SELECT e.*, j.document FROM executions e JOIN jobs j ON j.id = e.job_id
                WHERE e.robot_id = ? AND e.status = 'IN_PROGRESS' ORDER BY e.started_at LIMIT 1
                """, arguments: [robot]) {
                return (Self.execution(row), try Self.decode(JobDocument.self, row["document"]))
            }
            guard let row = try Row.fetchOne(db, sql: """
                SELECT e.*, j.document FROM executions e JOIN jobs j ON j.id = e.job_id
                WHERE e.robot_id = ? AND e.status = 'QUEUED' AND e.notified_at IS NOT NULL AND j.status = 'IN_PROGRESS'
                ORDER BY e.notified_at, e.job_id LIMIT 1
                """, arguments: [robot]) else { return nil }
            let e = Self.execution(row)
            try Self.move(db, e, to: .IN_PROGRESS, reason: "started by the robot", now: now)
            var started = e
            started.status = .IN_PROGRESS
            started.startedAt = now
            started.versionNumber += 1
            return (started, try Self.decode(JobDocument.self, row["document"]))
        }
    }

    /// The answer to an agent's update.
    public struct UpdateResult: Sendable, Equatable {
        public var accepted: Bool
        public var status: ExecutionStatus
        public var reason: String
    }

    /// IoT's UpdateJobExecution: progress (IN_PROGRESS with a phase) or the end (SUCCEEDED, FAILED,
    /// REJECTED) of an execution in progress. Repeating the end it already has is accepted without a
    /// change (an agent that restarts reports again); any other update of an ended execution is
    /// refused with its status.
    public func update(job: String, robot: String, status: ExecutionStatus, phase: String, detail: String,
                       activeVersion: String?, previousVersion: String?, now: Double = Date().timeIntervalSince1970) throws -> UpdateResult {
        try DeployNames.check(job, "job id")
        try DeployNames.check(robot, "robot id")
        guard [.IN_PROGRESS, .SUCCEEDED, .FAILED, .REJECTED].contains(status) else {
            throw DeployError("an agent reports IN_PROGRESS, SUCCEEDED, FAILED or REJECTED, not \(status.rawValue)")
        }
        for v in [activeVersion, previousVersion].compactMap({ $0 }) where !v.isEmpty && !Registry.isValidVersion(v) {
            throw DeployError("version '\(v.prefix(80))' is not a version name")
        }
        guard phase.utf8.count <= 64, phase.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.lowercaseLetters.contains($0) || $0 == "_") }) else {
            throw DeployError("a phase is 0-64 of a-z and '_', got '\(phase.prefix(80))'")
        }
        let detail = Self.cut(detail, Self.maxDetailBytes)
        return try database.write { db in
            try Self.heard(db, robot: robot, groups: nil, activeVersion: activeVersion, now: now)
            guard let e = try Row.fetchOne(db, sql: "SELECT * FROM executions WHERE job_id = ? AND robot_id = ?", arguments: [job, robot]).map(Self.execution) else {
                throw UnknownExecution(job: job, robot: robot)
            }
            if e.status == status, status.isTerminal { return UpdateResult(accepted: true, status: status, reason: "already \(status.rawValue)") }
            guard e.status == .IN_PROGRESS else {
                return UpdateResult(accepted: false, status: e.status, reason: "the execution is \(e.status.rawValue)")
            }
            if let previousVersion, e.previousVersion == nil {
                try db.execute(sql: "UPDATE executions SET previous_version = ? WHERE job_id = ? AND robot_id = ?", arguments: [previousVersion, job, robot])
            }
            switch status {
            case .IN_PROGRESS:
                try db.execute(sql: "UPDATE executions SET phase = ?, detail = ?, version_number = version_number + 1 WHERE job_id = ? AND robot_id = ?",
                               arguments: [phase, detail, job, robot])
            case .SUCCEEDED, .FAILED, .REJECTED:
                try db.execute(sql: "UPDATE executions SET phase = ?, detail = ? WHERE job_id = ? AND robot_id = ?", arguments: [phase, detail, job, robot])
                try Self.move(db, e, to: status, reason: detail.isEmpty ? phase : detail, now: now)
            default:
                preconditionFailure("checked above")
            }
            return UpdateResult(accepted: true, status: status, reason: "")
        }
    }

    // MARK: Rows and transitions

    /// Moves an execution (whose status `e` holds, read in this transaction) and logs it.
    static func move(_ db: Database, _ e: Execution, to next: ExecutionStatus, reason: String, now: Double) throws {
        guard e.status.canMove(to: next) else { throw DeployError("execution \(e.jobID)/\(e.robotID) cannot go from \(e.status.rawValue) to \(next.rawValue)") }
        var sql = "UPDATE executions SET status = ?, version_number = version_number + 1"
        if next == .IN_PROGRESS { sql += ", started_at = ?" } else { sql += ", finished_at = ?" }
        try db.execute(sql: sql + " WHERE job_id = ? AND robot_id = ? AND status = ?", arguments: [next.rawValue, now, e.jobID, e.robotID, e.status.rawValue])
        guard db.changesCount == 1 else { throw DeployError("execution \(e.jobID)/\(e.robotID) changed under the transaction") }
        try log(db, at: now, job: e.jobID, robot: e.robotID, from: e.status.rawValue, to: next.rawValue, reason: reason)
    }

    static func cancel(_ db: Database, job: Job, force: Bool, reason: String, now: Double) throws {
        try db.execute(sql: "UPDATE jobs SET status = 'CANCELED', finished = ?, reason = ? WHERE id = ?", arguments: [now, reason, job.id])
        try log(db, at: now, job: job.id, robot: nil, from: job.status.rawValue, to: JobStatus.CANCELED.rawValue, reason: reason)
        let open = try Row.fetchAll(db, sql: "SELECT * FROM executions WHERE job_id = ? AND status IN ('QUEUED', 'IN_PROGRESS')", arguments: [job.id]).map(execution)
        for e in open {
            switch e.status {
            case .QUEUED: try move(db, e, to: e.notifiedAt == nil ? .REMOVED : .CANCELED, reason: reason, now: now)
            case .IN_PROGRESS where force: try move(db, e, to: .CANCELED, reason: reason, now: now)
            default: break   // runs to its end: the robot's health check decides
            }
        }
    }

    static func log(_ db: Database, at: Double, job: String, robot: String?, from: String?, to: String, reason: String) throws {
        try db.execute(sql: "INSERT INTO transitions(at, job_id, robot_id, from_status, to_status, reason) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [at, job, robot ?? "", from, to, reason])
    }

    /// Records what a registered robot said (groups, active version) and when; unknown robots are
    /// not added (only `/deploy/register` adds robots). The time alone is written at most every 10 s.
    static func heard(_ db: Database, robot: String, groups: [String]?, activeVersion: String?, now: Double) throws {
        guard let existing = try Row.fetchOne(db, sql: "SELECT * FROM robots WHERE id = ?", arguments: [robot]) else { return }
        let groupsJSON: String = try groups.map { try json($0) } ?? existing["groups"]
        let active: String? = activeVersion.map { $0.isEmpty ? nil : $0 } ?? existing["active_version"]
        let lastSeen: Double = existing["last_seen"]
        guard groupsJSON != existing["groups"] || active != existing["active_version"] || now - lastSeen >= 10 else { return }
        try db.execute(sql: "UPDATE robots SET groups = ?, active_version = ?, last_seen = ? WHERE id = ?", arguments: [groupsJSON, active, now, robot])
    }

    /// `text` cut to at most `bytes` UTF-8 bytes, on a character boundary.
    static func cut(_ text: String, _ bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var out = ""
        var used = 0
        for c in text {
            let n = c.utf8.count
            guard used + n <= bytes else { break }
            out.append(c)
            used += n
        }
        return out
    }

    static func robots(_ db: Database) throws -> [Robot] {
        try Row.fetchAll(db, sql: "SELECT * FROM robots ORDER BY id").map { row in
            Robot(id: row["id"], groups: (try? decode([String].self, row["groups"])) ?? [], activeVersion: row["active_version"], lastSeen: row["last_seen"])
        }
    }

    static func job(_ row: Row) throws -> Job {
        Job(id: row["id"], status: JobStatus(rawValue: row["status"]) ?? .CANCELED, document: try decode(JobDocument.self, row["document"]),
            targets: try decode([String].self, row["targets"]), created: row["created"], started: row["started"], finished: row["finished"],
            reason: row["reason"], rollbackOf: row["rollback_of"])
    }

    static func execution(_ row: Row) -> Execution {
        Execution(jobID: row["job_id"], robotID: row["robot_id"], status: ExecutionStatus(rawValue: row["status"]) ?? .CANCELED,
                  versionNumber: row["version_number"], queuedAt: row["queued_at"], notifiedAt: row["notified_at"], startedAt: row["started_at"],
                  finishedAt: row["finished_at"], phase: row["phase"], detail: row["detail"], previousVersion: row["previous_version"])
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try JSONDecoder().decode(type, from: Data(text.utf8)) }
}

/// An update for an execution the store does not have (another database, a job deleted): agents
/// take it as "ended without me" and settle.
public struct UnknownExecution: Error, CustomStringConvertible, Sendable {
    public let job: String, robot: String
    public var description: String { "job \(job) has no execution for robot \(robot)" }
}
