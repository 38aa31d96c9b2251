import Foundation
import Testing
@testable import CollectKit

/// The state vector's split into `observation.state` (the robot) and `observation.environment_state`.
@Suite struct DatasetSpecTests {
    static func spec(_ state: [String], environment: [String]) -> DatasetSpec {
        DatasetSpec(format: .lerobotV30, fps: 60, robotType: "cartpole", stateNames: state, environmentStateNames: environment,
                    actionNames: ["cart_force"], cameras: [], videoCodec: .h264)
    }

    @Test func theRobotsComponentsThenTheEnvironmentsEachInTaskOrder() {
        let spec = Self.spec(["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"],
                             environment: ["pole_angular_velocity", "pole_angle", "not_a_component"])
        #expect(spec.environmentStateNames == ["pole_angle", "pole_angular_velocity"])
        let features = spec.stateFeatures
        #expect(features.map(\.key) == ["observation.state", "observation.environment_state"])
        #expect(features[0].names == ["cart_position", "cart_velocity"] && features[0].indices == [2, 3])
        #expect(features[1].names == ["pole_angle", "pole_angular_velocity"] && features[1].indices == [0, 1])
        let two: [Float] = [0, 1, 2, 3, 10, 11, 12, 13]   // two rows of four
        #expect(features[0].gather(two, stateWidth: 4) == [2, 3, 12, 13])
        #expect(features[1].gather(two, stateWidth: 4) == [0, 1, 10, 11])
    }

    @Test func withoutEnvironmentComponentsTheStateIsOneFeature() {
        let features = Self.spec(["box_x", "box_y"], environment: []).stateFeatures
        #expect(features.map(\.key) == ["observation.state"])
        #expect(features[0].gather([1, 2, 3, 4], stateWidth: 2) == [1, 2, 3, 4])
    }

    /// `meta/robosim_collect.json` of a dataset recorded before the split: no environment components.
    @Test func olderSpecsDecodeWithoutEnvironmentComponents() throws {
        let old = #"{"format":"lerobot-v3.0","fps":60,"robotType":"cartpole","stateNames":["a","b"],"actionNames":["u"],"cameras":[],"videoCodec":"h264"}"#
        let spec = try JSONDecoder().decode(DatasetSpec.self, from: Data(old.utf8))
        #expect(spec.environmentStateNames.isEmpty && spec.stateNames == ["a", "b"])
        let current = Self.spec(["a", "b"], environment: ["b"])
        #expect(try JSONDecoder().decode(DatasetSpec.self, from: JSONEncoder().encode(current)) == current)
    }
}
