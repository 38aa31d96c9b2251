import Foundation
import Messaging
import Testing

/// `SimClock`: waits end on sim time from `/clock`, on wall-clock timeouts, and when the clock goes back.
@Suite(.serialized) struct SimClockTests {
    static func clock(_ seconds: Double) -> RosgraphMsgs_Clock { .with { $0.clock = .init(seconds: seconds) } }

    @Test func waitsForSimTimeNotWallTime() async throws {
        let hub = try TestHub()
        let server = try hub.node("server"), client = try hub.node("client")
        defer { server.close(); client.close() }
        let publisher = try server.advertise("/clock", RosgraphMsgs_Clock.self)
        let clock = try SimClock(node: client)
        #expect(clock.now == nil)
        // Until the subscription is connected, publish time 1 s.
        let heard = await publishUntilReceived(publisher, Self.clock(1)) { () -> Double? in
            while clock.now == nil { try? await Task.sleep(for: .milliseconds(5)) }
            return clock.now
        }
        #expect(heard == 1)

        // A wait for sim time 3 returns when /clock says 3, long before its wall-clock timeout.
        let began = ContinuousClock.now
        let waiter = Task { await clock.wait(until: 3, timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(50))
        publisher.publish(Self.clock(2))
        publisher.publish(Self.clock(3))
        await waiter.value
        #expect(ContinuousClock.now - began < .seconds(30))
        #expect(clock.now == 3)

        // Nothing published: the timeout ends the wait, and the time stays.
        let quiet = ContinuousClock.now
        await clock.wait(until: 10, timeout: .milliseconds(100))
        #expect(ContinuousClock.now - quiet >= .milliseconds(100))
        #expect(clock.now == 3)

        // A time already reached returns at once.
        await clock.wait(until: 2.5, timeout: .seconds(60))

        // A clock that goes back (a restarted server) wakes a waiter for a later time.
        let back = Task { await clock.wait(until: 100, timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(50))
        publisher.publish(Self.clock(0.5))
        let woke = ContinuousClock.now
        await back.value
        #expect(ContinuousClock.now - woke < .seconds(30))
        #expect(clock.now == 0.5)
    }
}
