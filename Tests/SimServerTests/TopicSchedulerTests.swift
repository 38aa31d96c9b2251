import Testing
@testable import SimServer

/// One rule for every per-env topic: due when ⌊s·dt·r⌋ moves on from the last due step, and at every
/// episode start; exact average rates, at most one message per control step.
@Suite struct TopicSchedulerTests {
    func dueSteps(_ s: inout TopicScheduler, env: Int = 0, topic: Int = 0, steps: ClosedRange<Int>, epoch: UInt64 = 1) -> [Int] {
        steps.filter { s.due(env: env, topic: topic, step: $0, epoch: epoch) }
    }

    @Test func ratesAreExactOnAverageAndDueAtEpisodeStarts() {
        var rates = TopicRates(manifest: ["joint_states": 30], cameras: [("top", 100)])
        #expect(rates.names == ["joint_states", "tf", "robot_pose", "odom", "objects", "camera.top"])
        var s = TopicScheduler(envCount: 2, controlDt: 0.02, rates: rates)
        // 30 Hz at 50 Hz control: 3 messages per 5 steps, starting with step 0.
        let due = dueSteps(&s, steps: 0...49)
        #expect(due.first == 0 && due.count == 30)
        #expect(Set(zip(due, due.dropFirst()).map { $1 - $0 }) == [1, 2])
        // Above the control rate: every step, never more.
        let camera = dueSteps(&s, topic: 5, steps: 0...9)
        #expect(camera == Array(0...9))
        // Envs are independent; a new episode is due at its first step again.
        let otherEnv = dueSteps(&s, env: 1, steps: 0...0)
        let newEpisode = dueSteps(&s, steps: 0...0, epoch: 2)
        #expect(otherEnv == [0] && newEpisode == [0])
        // A slower rate from now on: no extra message at the change.
        rates["joint_states"] = 5
        s.setRates(rates)
        let slower = dueSteps(&s, steps: 1...30, epoch: 2)
        #expect(slower == [10, 20, 30])
    }

    @Test func extremeRatesAndStepsDoNotTrap() {
        var rates = TopicRates(manifest: [:])
        rates["tf"] = TopicRates.maxHz
        rates["odom"] = TopicRates.minHz
        var s = TopicScheduler(envCount: 1, controlDt: 1e-3, rates: rates)
        let huge = s.due(env: 0, topic: 1, step: Int.max / 2, epoch: 0)
        let first = s.due(env: 0, topic: 3, step: 0, epoch: 0)
        let early = s.due(env: 0, topic: 3, step: 1000, epoch: 0)   // 0.01 Hz: next at 100 s of sim time
        let later = s.due(env: 0, topic: 3, step: 100_000, epoch: 0)
        #expect(huge && first && !early && later)
    }
}
