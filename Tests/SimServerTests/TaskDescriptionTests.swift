import BuiltinPlugins
import Foundation
import PluginAPI
import Testing
@testable import SimEngine

/// Tasks describe themselves: names and units of observations and actions, reward terms, success.
@Suite struct TaskDescriptionTests {
    @Test(arguments: [
        ("Scenes/cartpole", "cartpole", ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"], ["cart_force"]),
        ("Scenes/object_tracker", "object_tracker",
         ["leader_x", "leader_y", "leader_distance", "leader_bearing", "forward_speed", "turn_rate"], ["linear", "angular"]),
    ])
    func builtinTasksNameTheirComponents(scene: String, task: String, observations: [String], actions: [String]) throws {
        let w = try WorldTests.world(scene, envs: 1, threads: 1)
        let d = w.description
        #expect(d.name == task)
        #expect(d.observations.map(\.name) == observations)
        #expect(d.actions.map(\.name) == actions)
        #expect(d.observations.allSatisfy { !$0.unit.isEmpty })
        #expect(!d.success.isEmpty)
        #expect(d.rewardTerms == w.task.rewardTerms)
    }

    @Test func tbarPushNamesTheSlotsClientsRead() throws {
        let d = try WorldTests.world("Scenes/tbar_push", envs: 1, threads: 1).description
        #expect(d.observations.count == 23)
        #expect(d.observationIndex("tbar_x") == 15 && d.observationIndex("tbar_sin_yaw") == 18 && d.observationIndex("slot_x") == 19)
        #expect(d.observations[3] == Quantity("shoulder_pan_joint", "rad"))
        #expect(d.success.contains("0.015 m"))
    }

    @Test func jointControlNamesComeFromTheModel() throws {
        let d = try WorldTests.world("Scenes/test/camera_box", envs: 1, threads: 1).description
        #expect(d.observations.map(\.name) == ["box_x", "box_y", "box_x_velocity", "box_y_velocity"])
        #expect(d.observations.map(\.unit) == ["m", "m", "m/s", "m/s"])
        #expect(d.success.isEmpty)
    }

    /// A task whose names do not match its sizes, or repeat.
    final class BadNames: TaskPlugin {
        static let name = "bad_names"
        static nonisolated(unsafe) var names: [Quantity] = []
        init(model: ModelView, configuration: TaskConfiguration) throws(PluginError) {}
        var observationSize: Int { 2 }
        var actionSize: Int { 1 }
        var observationNames: [Quantity] { Self.names }
        func reset(_ env: EnvView, random: inout RandomSource) {}
        func observe(_ env: EnvView, into observation: UnsafeMutableBufferPointer<Double>) {}
        func postStep(_ env: EnvView, observation: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus { StepStatus() }
    }

    @Test(.serialized, arguments: [
        ([Quantity("a")], "2 observation components but 1 observation names"),
        ([Quantity("a"), Quantity("a")], "observation name 'a' appears twice"),
        ([Quantity("a"), Quantity("b c")], "observation name 'b c' must be non-empty without spaces or control characters"),
    ])
    func inconsistentDescriptionsAreRefused(names: [Quantity], problem: String) throws {
        BadNames.names = names
        let scene = try Scene(directory: "Scenes/cartpole")
        #expect {
            try World(scene: scene, taskType: BadNames.self, robotType: nil, envCount: 1, seed: 0, threads: 1)
        } throws: { error in
            "\(error)".contains("bad_names: \(problem)") || "\(error)".contains(problem)
        }
    }
}
