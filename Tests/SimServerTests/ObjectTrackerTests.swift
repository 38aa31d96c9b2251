import Foundation
import Testing
@testable import SimEngine
@testable import SimServer

@Suite struct ObjectTrackerTests {
    /// A proportional pursuit controller catches the slower leader; doing nothing does not.
    @Test func pursuitSucceedsAndIdlingDoesNot() throws {
        let w = try WorldTests.world("Scenes/object_tracker", envs: 4, threads: 2)
        #expect(w.observationSize == 6 && w.actionSize == 2)
        for env in w.envs {
            let d = env.observation[2]
            #expect(d >= 1 - 1e-9 && d <= 2.5 + 1e-9)           // reset range
            #expect(abs(env.observation[3]) <= 0.6 + 1e-9)     // bearing range
        }
        var successes = Set<Int>()
        for _ in 0..<(w.maxSteps) {
            var actions: [Double] = []
            for env in w.envs {
                let (distance, bearing) = (env.observation[2], env.observation[3])
                _ = distance
                actions += [max(0, cos(bearing)), min(1, max(-1, 2 * bearing))]   // full speed, steer at it
            }
            w.step(Array(0..<4), actions: actions)
            for env in w.envs where env.terminated && env.success { successes.insert(env.index) }
            if successes.count == 4 { break }
        }
        #expect(successes.count == 4, "pursuit caught the leader in \(successes.count) of 4 envs")

        let idle = try WorldTests.world("Scenes/object_tracker", envs: 2, threads: 1)
        var idleSuccess = false
        for _ in 0..<200 {
            idle.step([0, 1], actions: [0, 0, 0, 0])
            idleSuccess = idleSuccess || idle.envs.contains { $0.success }
        }
        #expect(!idleSuccess)
    }
}
