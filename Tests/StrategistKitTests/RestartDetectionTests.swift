import Foundation
import Logging
import Messaging
import Synchronization
import Testing
import TestSupport
@testable import StrategistKit

/// How the strategist tells a restarted server: its instance id decides (read in the background and
/// when the clock goes back), a clock that goes back is only a hint.
@Suite struct InstanceTrackerTests {
    typealias Tracker = InstanceWatch.Tracker
    typealias Reading = InstanceWatch.Reading

    @Test func aNewIdIsARestartWhateverTheClockSays() {
        var t = Tracker(known: "a")
        #expect(t.check(seen: Reading(id: "a", number: 1), hint: nil) == .same)
        #expect(t.check(seen: Reading(id: "b", number: 2), hint: nil) == .restarted(was: "a", now: "b"))
        // The same reading again, and the next: the restart is not counted twice.
        #expect(t.check(seen: Reading(id: "b", number: 2), hint: nil) == .same)
        #expect(t.check(seen: Reading(id: "b", number: 3), hint: nil) == .same)
        #expect(t.known == "b")
    }

    @Test func aClockThatWentBackOnTheSameInstanceIsNoRestart() {
        var t = Tracker(known: "a")
        #expect(t.check(seen: Reading(id: "a", number: 1), hint: ("a", 2)) == .same)
        #expect(t.known == "a" && t.decidedAt == 2)
    }

    @Test func theClockFirstThenTheWatchCountsOnce() {
        var t = Tracker(known: "a")
        // The clock went back: the id read at once says b.
        #expect(t.check(seen: Reading(id: "a", number: 4), hint: ("b", 5)) == .restarted(was: "a", now: "b"))
        // The watch's latest is still the old server's (read 4, before the loop's read 5): old news.
        #expect(t.check(seen: Reading(id: "a", number: 4), hint: nil) == .same)
        // A read that started before the loop's but answered after it, from the old server.
        #expect(t.check(seen: Reading(id: "a", number: 3), hint: nil) == .same)
        #expect(t.check(seen: Reading(id: "b", number: 6), hint: nil) == .same)
        #expect(t.known == "b")
    }

    @Test func theWatchFirstThenTheClockCountsOnce() {
        var t = Tracker(known: "a")
        #expect(t.check(seen: Reading(id: "b", number: 7), hint: nil) == .restarted(was: "a", now: "b"))
        // The new server's clock is heard later, below the old server's last time: the same instance.
        #expect(t.check(seen: Reading(id: "b", number: 7), hint: ("b", 8)) == .same)
        #expect(t.known == "b")
    }

    @Test func anUnreadableIdWhenTheClockWentBackIsOneRestartAndTheNextIdIsAdopted() {
        var t = Tracker(known: "a")
        #expect(t.check(seen: Reading(id: "a", number: 1), hint: (nil, 2)) == .restarted(was: "a", now: nil))
        #expect(t.known == nil)
        // Still down, the clock goes back again (flapping): no second count.
        #expect(t.check(seen: Reading(id: "a", number: 1), hint: (nil, 3)) == .same)
        // The watch's reading from before is old news; the next one is adopted without counting.
        #expect(t.check(seen: Reading(id: "c", number: 4), hint: nil) == .same)
        #expect(t.known == "c")
        // From then on a new id counts again.
        #expect(t.check(seen: Reading(id: "d", number: 5), hint: nil) == .restarted(was: "c", now: "d"))
    }

    @Test func aServerThatWasOnlySlowIsKnownAgain() {
        // The id could not be read in time (a loaded server): counted, by the rule; when the same id
        // answers again it is known again, so that a later restart still counts.
        var t = Tracker(known: "a")
        #expect(t.check(seen: Reading(id: "a", number: 1), hint: (nil, 2)) == .restarted(was: "a", now: nil))
        #expect(t.check(seen: Reading(id: "a", number: 3), hint: nil) == .same)
        #expect(t.known == "a")
        #expect(t.check(seen: Reading(id: "b", number: 4), hint: nil) == .restarted(was: "a", now: "b"))
    }
}

/// `StrategistRun` on an in-process hub, with no envs: the test publishes `/clock`, sets the id the
/// fake `identify` answers, and knows the loop acted on a time when `/pace` carries it.
@Suite(.serialized) struct StrategistRestartTests {
    /// A value shared by the test, the hub's callbacks and the fake `identify`.
    final class Shared<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
    }

    final class Rig: Sendable {
        let hub: Hub
        let server: Node
        let strategist: Node
        let clock: Publisher<RosgraphMsgs_Clock>
        let paced = Shared<[Double]>([])
        let pacing: CallbackSubscription
        /// The id `identify` answers; nil: it throws (the server does not answer).
        let id = Shared<String?>("a")
        /// The ids `identify` answered, in order.
        let answered = Shared<[String]>([])
        let log = LogRecorder()
        let run: StrategistRun
        let loop: Task<RunSummary, Never>

        init(identified: Bool = true, interval: Double = 0.05) throws {
            var config = try HubConfiguration(listen: "inproc://strategist-restart-\(UUID().uuidString)")
            config.maxFrameBytes = 1 << 20
            var hubLogger = Logger(label: "test.hub")
            hubLogger.logLevel = .warning
            hub = try Hub(configuration: config, logger: hubLogger)
            hub.start()
            server = try Node(name: "server", hub: hub, heartbeat: 0.2)
            strategist = try Node(name: "strategist", hub: hub, heartbeat: 0.2)
            clock = try server.advertise("/clock", RosgraphMsgs_Clock.self)
            let paced = self.paced
            pacing = try server.onMessage("/pace", Robosim_Pace.self) { m in
                if !m.leaving { paced.withLock { $0.append(m.stamp.seconds) } }
            }
            let id = self.id, answered = self.answered
            let identify: @Sendable () throws -> String = {
                guard let now = id.withLock({ $0 }) else { throw ServiceError.deadlineExceeded("no reply (test)") }
                answered.withLock { $0.append(now) }
                return now
            }
            let logger = log.logger
            run = try StrategistRun(node: strategist, ids: [], source: StrategySource(backend: nil, planner: OfflinePlanner(), logger: logger),
                                    logDir: nil, logger: logger, identify: identified ? identify : nil, instance: identified ? "a" : nil,
                                    identifyInterval: interval)
            let run = self.run
            loop = Task { await run.loop(episodes: 0, period: 0.01) }
        }

        /// Publishes a rising `/clock` from 0.0001 s until the loop paces: `/pace` reaches the test
        /// (a subscription takes a moment to reach a publisher, and the loop paces each time once).
        func connect() async throws {
            let deadline = Date().addingTimeInterval(60)
            var t = 0.0
            while paced.withLock({ $0.isEmpty }) {
                try #require(Date() < deadline, "the loop never paced")
                t += 0.0001
                clock.publish(.with { $0.clock = .init(seconds: t) })
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Publishes `/clock` at `t` until the loop has acted on it (its `/pace` carries `t`): the
        /// restart check of that tick is done.
        func act(at t: Double) async throws {
            let deadline = Date().addingTimeInterval(60)
            while !paced.withLock({ $0.contains { abs($0 - t) < 1e-9 } }) {
                try #require(Date() < deadline, "the loop never acted on sim time \(t)")
                clock.publish(.with { $0.clock = .init(seconds: t) })
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Sets the id the server answers and waits until the watch has read it twice (so the first
        /// reading was stored before the loop's next tick).
        func answer(_ new: String) async throws {
            let before = answered.withLock { $0.count }
            id.withLock { $0 = new }
            try await until("the watch read \(new) twice") { answered.withLock { $0.dropFirst(before).filter { $0 == new }.count >= 2 } }
        }

        func until(_ what: String, _ condition: () -> Bool) async throws {
            let deadline = Date().addingTimeInterval(60)
            while !condition() {
                try #require(Date() < deadline, "timed out waiting until \(what)")
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        func restartWarnings() -> [LogRecorder.Entry] { log.entries(.warning).filter { $0.message.hasPrefix("the server restarted") } }

        func finish() async -> RunSummary {
            run.stop()
            let summary = await loop.value
            strategist.close()
            server.close()
            hub.shutdown()
            return summary
        }
    }

    @Test func aNewInstanceIdWhileTheClockKeepsRisingIsOneRestart() async throws {
        // What the clock rule missed: a restarted server that ran past the old server's time before
        // the strategist heard it.
        let rig = try Rig()
        try await rig.connect()
        try await rig.act(at: 1)
        try await rig.answer("b")
        try await rig.act(at: 2)
        try await rig.until("the restart is logged") { !rig.restartWarnings().isEmpty }
        try await rig.act(at: 3)
        try await rig.answer("b")
        try await rig.act(at: 4)
        let summary = await rig.finish()
        #expect(summary.restarts == 1)
        let warning = try #require(rig.restartWarnings().first)
        #expect(warning.message == "the server restarted (new instance id): episodes in flight lost")
        #expect(warning.metadata["strategist.instance_was"] == "a" && warning.metadata["strategist.instance_now"] == "b")
    }

    @Test func aClockThatGoesBackOnTheSameInstanceIsNoRestart() async throws {
        let rig = try Rig()
        try await rig.connect()
        try await rig.act(at: 5)
        try await rig.act(at: 1)
        try await rig.act(at: 2)
        let summary = await rig.finish()
        #expect(summary.restarts == 0)
        #expect(rig.restartWarnings().isEmpty)
        #expect(rig.log.entries(.debug).contains { $0.message.hasPrefix("the clock went back, but the server's instance id tells of no new restart") })
    }

    @Test func aRestartSeenFirstByTheWatchIsNotCountedAgainWhenTheClockGoesBack() async throws {
        let rig = try Rig()
        try await rig.connect()
        try await rig.act(at: 5)
        try await rig.answer("b")
        try await rig.act(at: 6)
        try await rig.until("the restart is logged") { !rig.restartWarnings().isEmpty }
        // The new server's clock is heard: below the last time acted on.
        try await rig.act(at: 0.5)
        try await rig.act(at: 1)
        let summary = await rig.finish()
        #expect(summary.restarts == 1 && rig.restartWarnings().count == 1)
    }

    @Test func aRestartSeenFirstByTheClockIsNotCountedAgainByTheWatch() async throws {
        // The watch reads once at the start and then not for an hour: only the clock's hint can
        // notice the restart, and the watch's reading of the old id is old news.
        let rig = try Rig(interval: 3600)
        try await rig.connect()
        try await rig.until("the watch read the id") { !rig.answered.withLock { $0.isEmpty } }
        try await rig.act(at: 5)
        rig.id.withLock { $0 = "b" }
        try await rig.act(at: 1)
        try await rig.act(at: 2)
        try await rig.act(at: 3)
        let summary = await rig.finish()
        #expect(summary.restarts == 1)
        let warning = try #require(rig.restartWarnings().first)
        #expect(rig.restartWarnings().count == 1)
        #expect(warning.metadata["strategist.instance_now"] == "b")
        #expect(warning.metadata["strategist.clock_was"] == "5.00" && warning.metadata["strategist.clock_now"] == "1.00")
    }

    @Test func anUnreadableIdWhenTheClockWentBackIsOneRestartAndTheNextIdIsAdopted() async throws {
        let rig = try Rig()
        try await rig.connect()
        try await rig.act(at: 5)
        rig.id.withLock { $0 = nil }   // the server does not answer
        try await rig.act(at: 1)
        #expect(rig.restartWarnings().count == 1)
        #expect(rig.restartWarnings().first?.message.hasPrefix("the server restarted (its clock went back and it does not answer") == true)
        try await rig.act(at: 0.5)     // flapping: not counted again
        try await rig.answer("b")      // adopted without counting
        try await rig.act(at: 2)
        try await rig.answer("c")      // a restart again
        try await rig.act(at: 3)
        try await rig.until("the second restart is logged") { rig.restartWarnings().count == 2 }
        let summary = await rig.finish()
        #expect(summary.restarts == 2)
        #expect(rig.restartWarnings().last?.metadata["strategist.instance_was"] == "b")
    }

    @Test func withoutAnInstanceIdAClockThatGoesBackIsARestart() async throws {
        let rig = try Rig(identified: false)
        try await rig.connect()
        try await rig.act(at: 5)
        try await rig.act(at: 6)
        try await rig.act(at: 1)
        try await rig.act(at: 2)
        let summary = await rig.finish()
        #expect(summary.restarts == 1)
        #expect(rig.restartWarnings().map(\.message) == ["the server restarted (its clock went back): episodes in flight lost"])
        #expect(rig.answered.withLock { $0.isEmpty })
    }
}
