import CMuJoCo
import Foundation
import Messaging
import PluginAPI

/// Publishes what the world produced, at the configured rates in sim time: `/clock`, and per env
/// `joint_states`, `tf`, `robot/pose`, `odom` (mobile robots), `objects` and `episode` events.
/// A per-env message is built only when someone subscribes to its topic.
/// Called on the step loop thread only.
final class StepPublisher: @unchecked Sendable {
    // Invariant: used by the step loop thread only (publishers themselves are thread-safe).

    /// One env's publishers.
    struct EnvTopics {
        let jointStates: Publisher<SensorMsgs_JointState>
        let tf: Publisher<Tf2Msgs_TFMessage>
        let robotPose: Publisher<GeometryMsgs_PoseStamped>
        let odom: Publisher<NavMsgs_Odometry>
        let objects: Publisher<Robosim_ObjectArray>
        let episode: Publisher<Robosim_EpisodeEvent>
    }

    /// Control steps between two messages of a topic (from its rate in sim time).
    struct Every {
        var jointStates = 1, tf = 1, robotPose = 1, odom = 1, objects = 1

        init(_ rates: TopicRates, controlDt: Double) {
            jointStates = rates.every("joint_states", controlDt: controlDt)
            tf = rates.every("tf", controlDt: controlDt)
            robotPose = rates.every("robot_pose", controlDt: controlDt)
            odom = rates.every("odom", controlDt: controlDt)
            objects = rates.every("objects", controlDt: controlDt)
        }
    }

    private let hub: Hub
    /// The scene's cameras (nil without cameras or rendering).
    let cameras: CameraPipeline?
    private let clock: Publisher<RosgraphMsgs_Clock>
    private let topics: [EnvTopics]
    /// The topic rates in force (Hz of sim time) and what they come to in control steps.
    private(set) var rates: TopicRates
    private(set) var every: Every
    private let controlDt: Double
    let bodies: BodyFrames
    private let clockPeriod: Double
    private var nextClock = 0.0
    /// Which per-env topics have subscribers (bit masks by `Wanted`), as of a hub subscription
    /// generation: rebuilt only when subscriptions change, so a step with no change costs no
    /// string work.
    private var wanted: [UInt8]
    private var wantedGeneration = UInt64.max
    private var clockWanted = false

    private enum Wanted {
        static let jointStates: UInt8 = 1, tf: UInt8 = 2, robotPose: UInt8 = 4, odom: UInt8 = 8, objects: UInt8 = 16
    }

    init(node: Node, hub: Hub, world: World, scene: Scene, clockRateHz: Double, cameras: CameraPipeline?) throws(Names.Violation) {
        self.hub = hub
        self.cameras = cameras
        clock = try node.advertise("/clock", RosgraphMsgs_Clock.self, qos: .standard)
        topics = try (0..<world.envs.count).map { i throws(Names.Violation) in
            let ns = Names.env(i)
            return EnvTopics(
                jointStates: try node.advertise("\(ns)/joint_states", qos: .sensor),
                tf: try node.advertise("\(ns)/tf", qos: .sensor),
                robotPose: try node.advertise("\(ns)/robot/pose", qos: .sensor),
                odom: try node.advertise("\(ns)/odom", qos: .sensor),
                objects: try node.advertise("\(ns)/objects", qos: .sensor),
                episode: try node.advertise("\(ns)/episode", qos: .standard))
        }
        controlDt = world.configuration.controlDt
        rates = TopicRates(manifest: scene.manifest.topicRatesHz)
        every = Every(rates, controlDt: controlDt)
        bodies = BodyFrames(world: world)
        clockPeriod = 1 / clockRateHz
        wanted = Array(repeating: 0, count: world.envs.count)
    }

    private func refreshWanted() {
        let generation = hub.subscriptionGeneration
        guard generation != wantedGeneration else { return }
        let prefixes = hub.subscriptionSnapshot
        func has(_ topic: String) -> Bool { prefixes.contains { topic.hasPrefix($0) } }
        for (i, t) in topics.enumerated() {
            var mask: UInt8 = 0
            if has(t.jointStates.topic) { mask |= Wanted.jointStates }
            if has(t.tf.topic) { mask |= Wanted.tf }
            if bodies.hasRobotPose, has(t.robotPose.topic) { mask |= Wanted.robotPose }
            if bodies.mobile, has(t.odom.topic) { mask |= Wanted.odom }
            if !bodies.objects.isEmpty, has(t.objects.topic) { mask |= Wanted.objects }
            wanted[i] = mask
        }
        clockWanted = has("/clock")
        wantedGeneration = generation
    }

    /// Changes the topic rates from the next published step on (between batches).
    func setRates(_ rates: TopicRates) {
        self.rates = rates
        every = Every(rates, controlDt: controlDt)
    }

    func publish(world: World, stepped ids: [Int], simTime: Double) {
        refreshWanted()
        if simTime + 1e-12 >= nextClock, clockWanted {
            var m = RosgraphMsgs_Clock()
            m.clock = .init(seconds: simTime)
            clock.publish(m)
            nextClock = simTime + clockPeriod
        }
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        for i in ids where wanted[i] != 0 {
            let mask = wanted[i], env = world.envs[i], step = env.steps
            let posesDue = (mask & Wanted.tf != 0 && step % every.tf == 0) || (mask & Wanted.robotPose != 0 && step % every.robotPose == 0)
                || (mask & Wanted.odom != 0 && step % every.odom == 0) || (mask & Wanted.objects != 0 && step % every.objects == 0)
            // Poses of the state just reached: the world computes them only for tasks that read them.
            if posesDue && !world.usesPoses { mj_kinematics(world.model.pointer, env.data) }
            if mask & Wanted.jointStates != 0, step % every.jointStates == 0 {
                topics[i].jointStates.publish(bodies.jointState(env, world, stamp))
            }
            if mask & Wanted.tf != 0, step % every.tf == 0 {
                topics[i].tf.publish(bodies.transforms(env, world, stamp))
            }
            if mask & Wanted.robotPose != 0, step % every.robotPose == 0 {
                topics[i].robotPose.publish(bodies.robotPose(env, world, stamp))
            }
            if mask & Wanted.odom != 0, step % every.odom == 0 {
                topics[i].odom.publish(bodies.odometry(env, world, stamp))
            }
            if mask & Wanted.objects != 0, step % every.objects == 0 {
                topics[i].objects.publish(bodies.objectArray(env, world, stamp))
            }
        }
        cameras?.capture(world: world, ids: ids, simTime: simTime)
        publishEvents(world: world, envs: ids, simTime: simTime)
    }

    /// After `/sim/reset` of `ids`: camera frames of the new episodes, then the episode events.
    func publishReset(world: World, envs ids: [Int], simTime: Double) {
        cameras?.capture(world: world, ids: ids, simTime: simTime)
        publishEvents(world: world, envs: ids, simTime: simTime)
    }

    func publishEvents(world: World, envs ids: [Int], simTime: Double) {
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        for i in ids where !world.envs[i].events.isEmpty {
            for var e in world.envs[i].events {
                e.header.stamp = stamp
                topics[i].episode.publish(e)
            }
            world.envs[i].events.removeAll(keepingCapacity: true)
        }
    }
}
