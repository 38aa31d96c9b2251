import BuiltinPlugins
import CMuJoCo
import Foundation
import PluginAPI
import StrategistKit
import TestSupport
import Testing
@testable import SimEngine
@testable import SimServer

/// The offline strategist's planner and executor driving `tbar_push` envs closed loop, in process
/// (the same logic `sim-strategist` runs over topics).
@Suite struct OfflineStrategistTests {
    struct Outcome: Sendable {
        var ended = 0, successes = 0
        var returns: [Double] = []
        var failures: [String] = []
    }

    /// Runs until `episodes` episodes ended over `envs` envs of a world seeded with `seed`.
    static func run(envs: Int, episodes: Int, seed: UInt64, threads: Int = 2) throws -> Outcome {
        let w = try WorldTests.world("Scenes/tbar_push", envs: envs, seed: seed, threads: threads)
        let planner = OfflinePlanner()
        let site = w.view.sites["ee_site"]!
        let slot = Pose2(x: 0.15, y: 0.15, yaw: 0)
        var executors = Array(repeating: PushExecutor(), count: envs)
        var outcome = Outcome()
        let ids = Array(0..<envs), zeros = [Double](repeating: 0, count: envs * w.actionSize)
        while outcome.ended < episodes {
            for env in w.envs {
                let i = env.index, o = env.observation, d = env.data
                let tool = SIMD3(d.pointee.site_xpos[3 * site], d.pointee.site_xpos[3 * site + 1], d.pointee.site_xpos[3 * site + 2])
                let bar = Pose2(x: o[15], y: o[16], yaw: atan2(o[18], o[17]))
                if executors[i].needsPlan {
                    let summary = WorkspaceSummary(tbar: bar, slot: slot, tool: tool, limits: planner.limits)
                    if let plan = planner.plan(summary) {
                        executors[i].start(plan, tool: tool, time: d.pointee.time)
                    }
                }
                if let target = executors[i].update(tool: tool, time: d.pointee.time) {
                    w.command(i, .robot(.endEffector(position: target, orientation: nil), origin: "/env_\(i)/ee_target"))
                }
            }
            w.step(ids, actions: zeros)
            for env in w.envs where env.terminated || env.truncated {
                guard outcome.ended < episodes else { break }
                outcome.ended += 1
                if env.success { outcome.successes += 1 } else {
                    let f = env.finalObservation ?? []
                    outcome.failures.append(String(format: "env %d episode %d: bar (%.3f, %.3f, %.0f°)", env.index, env.episode - 1,
                                                   f[15], f[16], atan2(f[18], f[17]) * 180 / .pi))
                }
                executors[env.index].reset()
            }
            for env in w.envs { env.rejections.removeAll() }
        }
        return outcome
    }

    /// Runs `body` on a thread of its own: a long simulation must not hold one of the (two)
    /// cooperative threads that other suites' async tests need.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onOwnThread(body)
    }

    @Test func offlineStrategistPushesTheTbarIntoTheSlot() async throws {
        let n = Int(ProcessInfo.processInfo.environment["ROBOSIM_TBAR_EPISODES"] ?? "") ?? 50
        let outcome = try await Self.onThread { try Self.run(envs: 8, episodes: n, seed: 7) }
        let rate = Double(outcome.successes) / Double(outcome.ended)
        print("offline strategist: \(outcome.successes) of \(outcome.ended) episodes succeeded (\(Int(rate * 100))%)")
        for line in outcome.failures { print("  failed: \(line)") }
        #expect(rate >= 0.9, "\(outcome.successes) of \(outcome.ended); failures: \(outcome.failures)")
    }
}
