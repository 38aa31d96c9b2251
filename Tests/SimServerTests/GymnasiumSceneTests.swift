import Foundation
import PluginAPI
import Testing
@testable import SimEngine

/// Scenes made from gymnasium's own MJCF files (Scenes/gym_*) with the generic robot and task:
/// they load, name their components after the model, and step with finite states.
@Suite struct GymnasiumSceneTests {
    @Test(arguments: [
        ("Scenes/gym_ant", 29, 8, "root_z", "hip_1"),
        ("Scenes/gym_humanoid", 47, 17, "root_qw", "abdomen_y"),
        ("Scenes/gym_inverted_pendulum", 4, 1, "hinge", "slide"),
    ])
    func loadsNamesAndSteps(scene: String, observationSize: Int, actionSize: Int, observation: String, action: String) throws {
        let w = try WorldTests.world(scene, envs: 4, seed: 3, threads: 2)
        #expect(w.observationSize == observationSize && w.actionSize == actionSize)
        #expect(w.description.observations.contains { $0.name == observation })
        #expect(w.description.actions.contains { $0.name == action })
        let ids = Array(0..<4)
        for s in 0..<100 {
            let actions = ids.flatMap { e in (0..<w.actionSize).map { _ in WorldTests.action(env: e, step: s) } }
            w.step(ids, actions: actions)
            let finite = w.envs.allSatisfy { env in env.observation.allSatisfy { $0.isFinite } }
            #expect(finite, "step \(s)")
        }
        let first = w.envs[0].observation
        let distinct = w.envs.contains { $0.observation != first }
        #expect(distinct, "every env in the same state after 100 random steps")
    }
}
