import ArgumentParser
import DeployKit
import Foundation

/// The deployer's store under a fleet's load: N robots through one job (notified, started, three
/// progress reports, succeeded), every transition a durable SQLite transaction (WAL, synchronous
/// FULL). Benchmarks/python/deploy_bench.py runs the same transactions with Python's sqlite3 and no
/// rules, the floor a store of this design can reach on this disk.
struct DeployBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Transactions per second of the deployer's job store on a fleet-sized job.")

    @Option(help: "Robots in the job.") var robots = 1000
    @Option(help: "The SQLite file (replaced).") var db = "/tmp/robosim-deploy-bench.sqlite"

    func run() throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        let store = try JobStore(path: db)
        let ids = (0..<robots).map { String(format: "robot-%05d", $0) }
        for id in ids { try store.register(robot: id, groups: ["fleet"], activeVersion: "1.0", now: 0) }
        try store.createJob(id: "bench", document: JobDocument(version: "2.0", rollout: RolloutConfig(maxPerMinute: 1000)), targets: ["fleet"], now: 0)
        let start = monotonic()
        var transactions = 0
        var now = 0.0
        var waiting = ids[...]
        while !waiting.isEmpty {
            now += 1
            let notified = try store.tick(now: now, burst: 1)
            transactions += 1
            for n in notified {
                _ = try store.startNext(robot: n.robotID, activeVersion: "1.0", now: now)
                for phase in ["downloading", "validating", "committing"] {
                    _ = try store.update(job: "bench", robot: n.robotID, status: .IN_PROGRESS, phase: phase, detail: "", activeVersion: "1.0",
                                         previousVersion: "1.0", now: now)
                }
                _ = try store.update(job: "bench", robot: n.robotID, status: .SUCCEEDED, phase: "committed", detail: "", activeVersion: "2.0",
                                     previousVersion: nil, now: now)
                transactions += 5
            }
            waiting = waiting.dropFirst(notified.count)
        }
        _ = try store.tick(now: now + 1)
        let seconds = monotonic() - start
        let done = try store.job("bench")?.status == .COMPLETED
        print(String(format: "swift_store_seconds %.3f transactions %d per_s %.0f completed %@", seconds, transactions, Double(transactions) / seconds, done ? "yes" : "no"))
    }
}
