import Foundation
import Messaging
import PluginAPI

/// Publishes what the world produced, at the configured rates in sim time: `/clock`,
/// `/env_i/joint_states`, `/env_i/episode`. Called on the step loop thread only.
final class StepPublisher: @unchecked Sendable {
    // Invariant: used by the step loop thread only (publishers themselves are thread-safe).
    private let node: Node
    private let hub: Hub
    private let clock: Publisher<RosgraphMsgs_Clock>
    private let jointStates: [Publisher<SensorMsgs_JointState>]
    private let episodes: [Publisher<Robosim_EpisodeEvent>]
    private let jointNames: [String]
    private let joints: [ModelView.Joint]
    private var clockPeriod: Double
    private var nextClock = 0.0
    private var jointStateEvery: Int

    init(node: Node, hub: Hub, world: World, clockRateHz: Double, jointStateRateHz: Double) throws(Names.Violation) {
        self.node = node
        self.hub = hub
        clock = try node.advertise("/clock", RosgraphMsgs_Clock.self, qos: .standard)
        jointStates = try (0..<world.envs.count).map { i throws(Names.Violation) in
            try node.advertise("\(Names.env(i))/joint_states", SensorMsgs_JointState.self, qos: .sensor)
        }
        episodes = try (0..<world.envs.count).map { i throws(Names.Violation) in
            try node.advertise("\(Names.env(i))/episode", Robosim_EpisodeEvent.self, qos: .standard)
        }
        let named = world.view.joints.filter { $0.value.kind == .hinge || $0.value.kind == .slide }.sorted { $0.value.index < $1.value.index }
        jointNames = named.map(\.key)
        joints = named.map(\.value)
        clockPeriod = 1 / clockRateHz
        jointStateEvery = max(1, Int((1 / (jointStateRateHz * world.configuration.controlDt)).rounded()))
    }

    func publish(world: World, stepped ids: [Int], simTime: Double) {
        if simTime + 1e-12 >= nextClock {
            var m = RosgraphMsgs_Clock()
            m.clock = .init(seconds: simTime)
            clock.publish(m)
            nextClock = simTime + clockPeriod
        }
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        for i in ids {
            let env = world.envs[i]
            if env.steps % jointStateEvery == 0, hub.hasSubscribers(jointStates[i].topic) {
                let view = env.view(world.model)
                var js = SensorMsgs_JointState()
                js.header.stamp = stamp
                js.name = jointNames
                js.position = joints.map { view.qpos[$0.qposAddress] }
                js.velocity = joints.map { view.qvel[$0.dofAddress] }
                jointStates[i].publish(js)
            }
        }
        publishEvents(world: world, envs: ids, simTime: simTime)
    }

    func publishEvents(world: World, envs ids: [Int], simTime: Double) {
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        for i in ids where !world.envs[i].events.isEmpty {
            for var e in world.envs[i].events {
                e.header.stamp = stamp
                episodes[i].publish(e)
            }
            world.envs[i].events.removeAll(keepingCapacity: true)
        }
    }
}
