import BuiltinPlugins
import CMuJoCo
import Foundation
import PluginAPI
import Testing
@testable import SimEngine
@testable import SimServer

/// The `tbar_push` task: seeded resets, planar tool actions through the motion generator, success.
@Suite struct TbarPushTests {
    static func world(envs: Int = 2) throws -> World { try WorldTests.world("Scenes/tbar_push", envs: envs, threads: 1) }

    @Test func resetPlacesTheBarWithinItsRangesFromTheSeed() throws {
        let a = try Self.world(envs: 4), b = try Self.world(envs: 4)
        #expect(a.observationSize == 23 && a.actionSize == 2)
        for (ea, eb) in zip(a.envs, b.envs) {
            #expect(ea.observation == eb.observation)
            let o = ea.observation
            #expect(o[15] >= 0.05 - 0.15 - 1e-9 && o[15] <= 0.05 + 0.15 + 1e-9)
            #expect(o[16] >= -0.15 - 0.1 - 1e-9 && o[16] <= -0.15 + 0.1 + 1e-9)
            #expect(abs(o[17] * o[17] + o[18] * o[18] - 1) < 1e-9)
            #expect(Array(o[19...22]) == [0.15, 0.15, 1, 0])
            #expect(abs(o[2] - 0.77) < 0.005)   // home: tool tip 2 cm above the table
        }
        #expect(Set(a.envs.map { $0.observation[15] }).count == 4)
    }

    @Test func actionsMoveTheToolInThePlaneAtItsHeight() throws {
        let w = try Self.world(envs: 1)
        let env = w.envs[0]
        let start = env.observation
        w.command(0, .action)
        // +x at full speed (0.25 m/s) for 0.4 s, then 0.4 s at rest: 0.1 m along x.
        for k in 0..<40 { w.step([0], actions: k < 20 ? [1, 0] : [0, 0]) }
        let end = env.observation
        #expect(env.rejections.isEmpty)
        #expect(abs((end[0] - start[0]) - 0.1) < 0.005, "moved \(end[0] - start[0]) m")
        #expect(abs(end[1] - start[1]) < 0.003)
        #expect(abs(end[2] - 0.763) < 0.003)   // ee_height 1.3 cm
    }

    @Test func barInTheSlotSucceedsAndTerminates() throws {
        let w = try Self.world(envs: 1)
        // Offsets that put the bar exactly on the slot (0.15, 0.15), yaw 0.
        w.setResetRanges(ResetRanges(["tbar_x": 0.1...0.1, "tbar_y": 0.3...0.3, "tbar_yaw": 0...0]))
        w.reset([0], seed: 1)
        w.command(0, .action)
        w.step([0], actions: [0, 0])
        let env = w.envs[0]
        #expect(env.terminated && env.success)
        #expect(env.reward >= 10 - 1e-6 - 0.1)
        // 3 cm off: not yet.
        w.setResetRanges(ResetRanges(["tbar_x": 0.13...0.13, "tbar_y": 0.3...0.3, "tbar_yaw": 0...0]))
        w.reset([0], seed: 1)
        w.step([0], actions: [0, 0])
        #expect(!w.envs[0].terminated && !w.envs[0].success)
    }
}
