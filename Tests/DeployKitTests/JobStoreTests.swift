import Foundation
import Testing
@testable import DeployKit

/// The job rules, on a real SQLite file with a clock the tests drive: rollout rate, start and
/// updates, timeouts, abort, cancel, completion, rollback, and the transition log.
@Suite struct JobStoreTests {
    static func store() throws -> (JobStore, URL) {
        let dir = try RegistryTests.folder()
        return (try JobStore(path: dir.appendingPathComponent("jobs.sqlite").path), dir)
    }

    /// Every execution's log is a path of allowed moves starting at QUEUED, with no status twice.
    static func checkLog(_ store: JobStore, job: String) throws {
        var byRobot: [String: [Transition]] = [:]
        for t in try store.transitions(job: job) where t.robotID != nil { byRobot[t.robotID!, default: []].append(t) }
        for (robot, log) in byRobot {
            #expect(log.first?.to == "QUEUED" && log.first?.from == nil, "\(robot)")
            for (a, b) in zip(log, log.dropFirst()) {
                #expect(b.from == a.to, "\(robot): \(a.to) then \(b.from ?? "-") -> \(b.to)")
                #expect(ExecutionStatus(rawValue: a.to)!.canMove(to: ExecutionStatus(rawValue: b.to)!), "\(robot): \(a.to) -> \(b.to)")
            }
            #expect(Set(log.map(\.to)).count == log.count, "\(robot) repeated a status")
            let current = try store.execution(job: job, robot: robot)!.status.rawValue
            #expect(log.last?.to == current, "\(robot): the log ends at \(log.last?.to ?? "-"), the execution is \(current)")
        }
    }

    @Test func robotsAreNotifiedAtTheRolloutRateAndTheJobCompletes() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        for k in 0..<6 { try store.register(robot: "r\(k)", groups: ["fleet"], activeVersion: "1.0", now: 0) }
        try store.createJob(id: "j1", document: JobDocument(version: "2.0", rollout: RolloutConfig(maxPerMinute: 6)), targets: ["fleet"], now: 0)
        #expect(try store.job("j1")?.status == .SCHEDULED)
        // 6 per minute: one every 10 s.
        var notifiedAt: [Double] = []
        for t in stride(from: 0.0, through: 60, by: 1) {
            notifiedAt += try store.tick(now: t).map { _ in t }
        }
        #expect(notifiedAt == [0, 10, 20, 30, 40, 50])
        #expect(try store.job("j1")?.status == .IN_PROGRESS)
        // Robots start and finish; a repeated end is accepted and changes nothing.
        for k in 0..<6 {
            let (e, document) = try #require(try store.startNext(robot: "r\(k)", activeVersion: "1.0", now: 61))
            #expect(e.status == .IN_PROGRESS && document.version == "2.0")
            #expect(try store.startNext(robot: "r\(k)", activeVersion: "1.0", now: 61.5)?.0.jobID == "j1")   // resumed, not restarted
            #expect(try store.update(job: "j1", robot: "r\(k)", status: .IN_PROGRESS, phase: "downloading", detail: "", activeVersion: "1.0", previousVersion: "1.0", now: 62).accepted)
            #expect(try store.update(job: "j1", robot: "r\(k)", status: .SUCCEEDED, phase: "committed", detail: "", activeVersion: "2.0", previousVersion: nil, now: 63).accepted)
            let again = try store.update(job: "j1", robot: "r\(k)", status: .SUCCEEDED, phase: "committed", detail: "", activeVersion: "2.0", previousVersion: nil, now: 64)
            #expect(again.accepted && again.status == .SUCCEEDED)
            #expect(try !store.update(job: "j1", robot: "r\(k)", status: .FAILED, phase: "", detail: "", activeVersion: "2.0", previousVersion: nil, now: 64).accepted)
        }
        _ = try store.tick(now: 65)
        #expect(try store.job("j1")?.status == .COMPLETED)
        #expect(try store.robots().allSatisfy { $0.activeVersion == "2.0" })
        try Self.checkLog(store, job: "j1")
        // Rollback: a job back to 1.0 for every robot still on 2.0 (r5 was moved on by a later job).
        try store.register(robot: "r5", groups: nil, activeVersion: "3.0", now: 66)
        let back = try store.rollback(job: "j1", now: 70)
        #expect(back.map(\.id) == ["j1-rollback"] && back[0].document.version == "1.0" && back[0].targets == (0..<5).map { "r\($0)" } && back[0].rollbackOf == "j1")
        #expect(throws: DeployError.self) { try store.rollback(job: "j1", now: 71) }   // its job id exists: nothing half made
        #expect(try store.jobs().count == 2)
        // A target that is neither a robot nor a group is refused unless asked for.
        #expect(throws: DeployError.self) { try store.createJob(id: "typo", document: JobDocument(version: "2.0"), targets: ["flete"]) }
    }

    @Test func anExponentialRateNotifiesFasterAfterEachThreshold() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 6 per minute, doubled once 2, 4, 6 robots were notified: gaps 10, 5, 5, 2.5, 2.5, 1.25 s.
        let rollout = RolloutConfig(maxPerMinute: 1000, exponential: .init(basePerMinute: 6, incrementFactor: 2, threshold: 2, countSucceeded: false))
        try store.createJob(id: "e", document: JobDocument(version: "2.0", rollout: rollout), targets: (0..<7).map { "r\($0)" }, allowUnregistered: true, now: 0)
        var times: [Double] = []
        for t in stride(from: 0.0, through: 40, by: 0.25) { times += try store.tick(now: t).map { _ in t } }
        #expect(times == [0, 10, 15, 20, 22.5, 25, 26.25])
    }

    @Test func anExponentialRateRisesAfterEachThresholdAndACrashedDeployerDoesNotBurst() throws {
        let rollout = RolloutConfig(maxPerMinute: 1000, exponential: .init(basePerMinute: 6, incrementFactor: 2, threshold: 2, countSucceeded: false))
        #expect(rollout.rate(notified: 0, succeeded: 0) == 6 && rollout.rate(notified: 2, succeeded: 0) == 12 && rollout.rate(notified: 4, succeeded: 0) == 24)
        #expect(RolloutConfig(maxPerMinute: 20, exponential: rollout.exponential).rate(notified: 100, succeeded: 0) == 20)
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        try store.createJob(id: "j", document: JobDocument(version: "2.0", rollout: RolloutConfig(maxPerMinute: 60)), targets: (0..<10).map { "r\($0)" }, allowUnregistered: true, now: 0)
        #expect(try store.tick(now: 0).count == 1)
        // The deployer was down for 100 s: one second's worth of robots is due (two at 60 per minute), not the 100 s worth.
        #expect(try store.tick(now: 100).count == 2)
        #expect(try store.tick(now: 100.5).count == 0)
        #expect(try store.tick(now: 101).count == 1)
    }

    @Test func failuresPastTheThresholdAbortTheJobAndUntouchedRobotsAreRemoved() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let document = JobDocument(version: "bad", rollout: RolloutConfig(maxPerMinute: 60), abort: [AbortCriterion(failureType: .FAILED, thresholdPercentage: 50, minExecuted: 3)])
        try store.createJob(id: "j", document: document, targets: (0..<10).map { "r\($0)" }, allowUnregistered: true, now: 0)
        for t in 0..<4 { _ = try store.tick(now: Double(t)) }   // r0...r3 notified
        for k in 0..<3 {
            _ = try store.startNext(robot: "r\(k)", activeVersion: "good", now: 3.2)
            _ = try store.update(job: "j", robot: "r\(k)", status: .FAILED, phase: "rolled_back", detail: "health check", activeVersion: "good", previousVersion: "good", now: 3.3)
            _ = try store.tick(now: 3.5)
        }
        let job = try #require(try store.job("j"))
        #expect(job.status == .CANCELED && job.reason?.hasPrefix("aborted: 3 of 3") == true)
        let executions = Dictionary(uniqueKeysWithValues: try store.executions(job: "j").map { ($0.robotID, $0.status) })
        #expect(executions["r3"] == .CANCELED)    // notified, never started
        #expect((4..<10).allSatisfy { executions["r\($0)"] == .REMOVED })
        #expect(try store.startNext(robot: "r4", activeVersion: "good", now: 7) == nil)
        try Self.checkLog(store, job: "j")
    }

    @Test func anExecutionInProgressPastItsTimeoutTimesOutCountsTowardAbortAndRefusesLateReports() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let document = JobDocument(version: "2.0", inProgressTimeout: 30, abort: [AbortCriterion(failureType: .TIMED_OUT, thresholdPercentage: 100, minExecuted: 1)])
        try store.createJob(id: "j", document: document, targets: ["a", "b"], allowUnregistered: true, now: 0)
        _ = try store.tick(now: 0)
        _ = try store.startNext(robot: "a", activeVersion: nil, now: 1)
        _ = try store.tick(now: 1)
        _ = try store.startNext(robot: "b", activeVersion: nil, now: 10)
        _ = try store.tick(now: 30)
        #expect(try store.execution(job: "j", robot: "a")?.status == .IN_PROGRESS)
        _ = try store.tick(now: 31.5)
        #expect(try store.execution(job: "j", robot: "a")?.status == .TIMED_OUT)
        #expect(try store.job("j")?.status == .CANCELED)
        let late = try store.update(job: "j", robot: "a", status: .SUCCEEDED, phase: "committed", detail: "", activeVersion: "2.0", previousVersion: nil, now: 40)
        #expect(!late.accepted && late.status == .TIMED_OUT)
        // The abort left b (notified at 1 s, started at 10 s) to finish: its timeout still applies.
        #expect(try store.execution(job: "j", robot: "b")?.status == .IN_PROGRESS)
        _ = try store.tick(now: 40.5)
        #expect(try store.execution(job: "j", robot: "b")?.status == .TIMED_OUT)
        try Self.checkLog(store, job: "j")
    }

    @Test func forcedCancelStopsRobotsInProgressAndBadInputIsRefused() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(at: dir) }
        try store.createJob(id: "j", document: JobDocument(version: "2.0"), targets: ["a", "b"], allowUnregistered: true, now: 0)
        _ = try store.tick(now: 0)
        _ = try store.startNext(robot: "a", activeVersion: nil, now: 1)
        try store.cancel(job: "j", force: true, reason: "operator", now: 2)
        #expect(try store.execution(job: "j", robot: "a")?.status == .CANCELED)
        #expect(try !store.update(job: "j", robot: "a", status: .IN_PROGRESS, phase: "validating", detail: "", activeVersion: nil, previousVersion: nil, now: 3).accepted)
        #expect(throws: DeployError.self) { try store.cancel(job: "j", force: false, reason: "", now: 4) }
        #expect(throws: DeployError.self) { try store.createJob(id: "j", document: JobDocument(version: "2.0"), targets: ["a"]) }
        #expect(throws: DeployError.self) { try store.createJob(id: "bad id", document: JobDocument(version: "2.0"), targets: ["a"]) }
        #expect(throws: DeployError.self) { try store.createJob(id: "k", document: JobDocument(version: "2.0"), targets: [".."]) }
        #expect(throws: DeployError.self) { try store.createJob(id: "k", document: JobDocument(version: "2.0", rollout: RolloutConfig(maxPerMinute: 1001)), targets: ["a"]) }
        #expect(throws: DeployError.self) { try store.createJob(id: "k", document: JobDocument(version: "2.0"), targets: []) }
        #expect(throws: DeployError.self) { try store.register(robot: String(repeating: "x", count: 200), groups: [], activeVersion: nil) }
        #expect(throws: DeployError.self) { try AbortCriterion(parsing: "FAILED:x:3") }
        #expect(try AbortCriterion(parsing: "timed_out:25:4") == AbortCriterion(failureType: .TIMED_OUT, thresholdPercentage: 25, minExecuted: 4))
        #expect(throws: UnknownExecution.self) { try store.update(job: "nope", robot: "a", status: .FAILED, phase: "", detail: "", activeVersion: nil, previousVersion: nil) }
        #expect(throws: DeployError.self) { try store.update(job: "j", robot: "b", status: .FAILED, phase: String(repeating: "a\u{301}", count: 40), detail: "", activeVersion: nil, previousVersion: nil) }
        #expect(JobStore.cut(String(repeating: "é", count: 1000), 1024).utf8.count == 1024)
        // An aborted job's robots still installing can be stopped as a whole.
        try store.createJob(id: "k", document: JobDocument(version: "2.0"), targets: ["c"], allowUnregistered: true, now: 10)
        _ = try store.tick(now: 10)
        _ = try store.startNext(robot: "c", activeVersion: nil, now: 11)
        try store.cancel(job: "k", force: false, reason: "operator", now: 12)
        #expect(try store.execution(job: "k", robot: "c")?.status == .IN_PROGRESS)
        try store.cancel(job: "k", force: true, reason: "operator", now: 13)
        #expect(try store.execution(job: "k", robot: "c")?.status == .CANCELED)
        try Self.checkLog(store, job: "j")
    }
}
