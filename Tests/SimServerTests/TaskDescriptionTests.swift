import BuiltinPlugins
import Foundation
import PluginAPI
import Testing
@testable import SimEngine

/// Tasks describe themselves: names and units of observations and actions, reward terms, success.
@Suite(.serialized) struct TaskDescriptionTests {
    @Test(arguments: [
        ("Scenes/cartpole", "cartpole", ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"], ["cart_force"],
         ["pole_angle", "pole_angular_velocity"]),
        ("Scenes/object_tracker", "object_tracker",
         ["leader_x", "leader_y", "leader_distance", "leader_bearing", "forward_speed", "turn_rate"], ["linear", "angular"],
         ["leader_x", "leader_y", "leader_distance", "leader_bearing"]),
    ])
    func builtinTasksNameTheirComponents(scene: String, task: String, observations: [String], actions: [String], environment: [String]) throws {
        let w = try WorldTests.world(scene, envs: 1, threads: 1)
        let d = w.description
        #expect(d.name == task)
        #expect(d.observations.map(\.name) == observations)
        #expect(d.environmentObservations == environment)
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
        #expect(d.environmentObservations == ["tbar_x", "tbar_y", "tbar_cos_yaw", "tbar_sin_yaw", "slot_x", "slot_y", "slot_cos_yaw", "slot_sin_yaw"])
    }

    @Test func jointControlNamesComeFromTheModel() throws {
        let d = try WorldTests.world("Scenes/test/camera_box", envs: 1, threads: 1).description
        #expect(d.observations.map(\.name) == ["box_x", "box_y", "box_x_velocity", "box_y_velocity"])
        #expect(d.observations.map(\.unit) == ["m", "m", "m/s", "m/s"])
        #expect(d.success.isEmpty)
        #expect(d.environmentObservations.isEmpty)
    }

    /// A task whose names do not match its sizes, or repeat.
    final class BadNames: TaskPlugin {
        static let name = "bad_names"
        static nonisolated(unsafe) var names: [Quantity] = []
        static nonisolated(unsafe) var environment: [String] = []
        init(model: ModelView, configuration: TaskConfiguration) throws(PluginError) {}
        var observationSize: Int { 2 }
        var actionSize: Int { 1 }
        var observationNames: [Quantity] { Self.names }
        var environmentObservations: [String] { Self.environment }
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
        BadNames.environment = []
        let scene = try Scene(directory: "Scenes/cartpole")
        #expect {
            try World(scene: scene, taskType: BadNames.self, robotType: nil, envCount: 1, seed: 0, threads: 1)
        } throws: { error in
            "\(error)".contains("bad_names: \(problem)") || "\(error)".contains(problem)
        }
    }

    @Test(.serialized, arguments: [
        (["c"], "environment observations [\"c\"] must name distinct observation components and leave at least one for the robot"),
        (["a", "a"], "environment observations [\"a\", \"a\"] must name distinct"),
        (["b", "a"], "environment observations [\"b\", \"a\"] must name distinct"),
    ])
    func environmentObservationsMustNameSomeComponents(environment: [String], problem: String) throws {
        BadNames.names = [Quantity("a"), Quantity("b")]
        BadNames.environment = environment
        defer { BadNames.environment = [] }
        let scene = try Scene(directory: "Scenes/cartpole")
        #expect {
            try World(scene: scene, taskType: BadNames.self, robotType: nil, envCount: 1, seed: 0, threads: 1)
        } throws: { error in
            "\(error)".contains(problem)
        }
    }

    @Test func environmentObservationsKeepTheObservationOrder() throws {
        BadNames.names = [Quantity("a"), Quantity("b")]
        BadNames.environment = ["b"]
        defer { BadNames.environment = [] }
        let w = try World(scene: try Scene(directory: "Scenes/cartpole"), taskType: BadNames.self, robotType: nil, envCount: 1, seed: 0, threads: 1)
        #expect(w.description.environmentObservations == ["b"])
    }
}
