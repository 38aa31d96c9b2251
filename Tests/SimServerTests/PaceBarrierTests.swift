import Logging
import Messaging
import Testing
@testable import SimServer

/// `PaceBarrier`: the step loop's limit is the slowest pacing client's stamp plus horizon; silent
/// clients stop counting after the silence; the table and the values are bounded.
struct PaceBarrierTests {
    static func pace(_ node: String, _ stamp: Double, _ horizon: Double, leaving: Bool = false) -> Robosim_Pace {
        .with {
            $0.node = node
            $0.stamp = .init(seconds: stamp)
            $0.horizonS = horizon
            $0.leaving = leaving
        }
    }

    @Test func theSlowestLiveClientSetsTheLimit() {
        let barrier = PaceBarrier(silence: .seconds(1), logger: Logger(label: "test"))
        let t0 = ContinuousClock.now
        #expect(barrier.limit(now: t0) == nil)
        #expect(barrier.receive(Self.pace("a", 2, 0.5), now: t0))
        #expect(barrier.receive(Self.pace("b", 1, 0.25), now: t0))
        #expect(barrier.limit(now: t0) == 1.25)
        // b moves on: a is now the slowest.
        #expect(barrier.receive(Self.pace("b", 5, 0.25), now: t0 + .milliseconds(500)))
        #expect(barrier.limit(now: t0 + .milliseconds(500)) == 2.5)
        // a goes silent for more than a second: only b counts.
        #expect(barrier.limit(now: t0 + .milliseconds(1200)) == 5.25)
        // b leaves: nobody paces.
        #expect(barrier.receive(Self.pace("b", 0, 0, leaving: true), now: t0 + .milliseconds(1300)))
        #expect(barrier.limit(now: t0 + .milliseconds(1300)) == nil)
    }

    @Test func outOfRangeMessagesAreIgnoredAndCounted() {
        let barrier = PaceBarrier(logger: Logger(label: "test"))
        for horizon in [Double.nan, .infinity, -1, 0, 1e9] {
            #expect(!barrier.receive(Self.pace("a", 1, horizon)))
        }
        #expect(!barrier.receive(Self.pace("", 1, 0.1)))
        #expect(!barrier.receive(Self.pace(String(repeating: "n", count: PaceBarrier.maxNameBytes + 1), 1, 0.1)))
        #expect(barrier.ignored == 7)
        #expect(barrier.limit() == nil)
    }

    @Test func theTableIsBounded() {
        let barrier = PaceBarrier(logger: Logger(label: "test"))
        let now = ContinuousClock.now
        for i in 0..<PaceBarrier.maxPacers { #expect(barrier.receive(Self.pace("p\(i)", 10, 1), now: now)) }
        for i in 0..<1000 { _ = barrier.receive(Self.pace("extra\(i)", 0, 0.001), now: now) }
        #expect(barrier.ignored == 1000)
        #expect(barrier.limit(now: now) == 11)   // the extra clients, all slower, are not waited for
    }
}
