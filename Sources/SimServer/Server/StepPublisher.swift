import Foundation
import Messaging
import PluginAPI
import SimEngine

/// Publishes what the world produced: `/clock`, and per env `joint_states`, `tf`, `robot/pose`,
/// `odom` (mobile robots), `objects`, camera frames and `episode` events. One `TopicScheduler`
/// decides when each per-env topic is due (state topics and cameras alike); a message is built only
/// when someone subscribes to its topic. Used with the world, under the step loop's exclusive lock.
final class StepPublisher: @unchecked Sendable {
    // Invariant: used by one thread at a time, the one holding `StepLoop`'s exclusive lock (the loop
    // thread or a step channel's thread); publishers themselves are thread-safe.

    /// One env's state publishers.
    struct EnvTopics {
        let jointStates: Publisher<SensorMsgs_JointState>
        let tf: Publisher<Tf2Msgs_TFMessage>
        let robotPose: Publisher<GeometryMsgs_PoseStamped>
        let odom: Publisher<NavMsgs_Odometry>
        let objects: Publisher<Robosim_ObjectArray>
        let episode: Publisher<Robosim_EpisodeEvent>
    }

    /// Scheduler indices of the state topics (`TopicRates.stateTopics` order); cameras follow.
    private enum Topic {
        static let jointStates = 0, tf = 1, robotPose = 2, odom = 3, objects = 4, firstCamera = 5
    }

    private let hub: Hub
    /// The scene's cameras (nil without cameras or rendering).
    let cameras: CameraPublisher?
    private let clock: Publisher<RosgraphMsgs_Clock>
    private let topics: [EnvTopics]
    private var scheduler: TopicScheduler
    let bodies: BodyFrames
    private let cameraCount: Int
    private let clockPeriod: Double
    private var nextClock = 0.0
    /// Which per-env topics have subscribers (one flag per scheduler topic), as of a hub
    /// subscription generation: rebuilt only when subscriptions change, so a step with no change
    /// costs no string work.
    private var wanted: [[Bool]]
    private var anyWanted: [Bool]
    /// Per env: `/env_i/episode` has a subscriber (events nobody subscribed to are not serialized:
    /// the socket would drop them anyway).
    private var episodeWanted: [Bool]
    private var wantedGeneration = UInt64.max
    private var clockWanted = false

    init(node: Node, hub: Hub, world: World, scene: Scene, cameraSpecs: [CameraSpec], clockRateHz: Double,
         cameras: CameraPublisher?) throws(Names.Violation) {
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
        let rates = TopicRates(manifest: scene.manifest.topicRatesHz, cameras: cameraSpecs.map { ($0.name, $0.rateHz) })
        scheduler = TopicScheduler(envCount: world.envs.count, controlDt: world.configuration.controlDt, rates: rates)
        bodies = BodyFrames(world: world)
        cameraCount = cameras == nil ? 0 : cameraSpecs.count
        clockPeriod = 1 / clockRateHz
        wanted = Array(repeating: Array(repeating: false, count: rates.names.count), count: world.envs.count)
        anyWanted = Array(repeating: false, count: world.envs.count)
        episodeWanted = Array(repeating: false, count: world.envs.count)
    }

    /// The topic rates in force (Hz of sim time).
    var rates: TopicRates { scheduler.rates }

    /// Changes the topic rates from the next published step on (between batches).
    func setRates(_ rates: TopicRates) { scheduler.setRates(rates) }

    private func refreshWanted() {
        let generation = hub.subscriptionGeneration
        guard generation != wantedGeneration else { return }
        // A topic is wanted when one of its own prefixes is subscribed: one set lookup per prefix
        // length, whatever the number of subscriptions.
        let prefixes = Set(hub.subscriptionSnapshot)
        func has(_ topic: String) -> Bool {
            var prefix = ""
            if prefixes.contains(prefix) { return true }
            for c in topic {
                prefix.append(c)
                if prefixes.contains(prefix) { return true }
            }
            return false
        }
        for (i, t) in topics.enumerated() {
            wanted[i][Topic.jointStates] = has(t.jointStates.topic)
            wanted[i][Topic.tf] = has(t.tf.topic)
            wanted[i][Topic.robotPose] = bodies.hasRobotPose && has(t.robotPose.topic)
            wanted[i][Topic.odom] = bodies.mobile && has(t.odom.topic)
            wanted[i][Topic.objects] = !bodies.objects.isEmpty && has(t.objects.topic)
            for c in 0..<cameraCount {
                wanted[i][Topic.firstCamera + c] = cameras!.topicNames(env: i, camera: c).contains(where: has)
            }
            anyWanted[i] = wanted[i].contains(true)
            episodeWanted[i] = has(t.episode.topic)
        }
        clockWanted = has("/clock")
        wantedGeneration = generation
    }

    /// After a batch of `ids`: the clock, the due topics of each env, then the episode events.
    func publish(world: World, stepped ids: [Int], simTime: Double) {
        refreshWanted()
        if simTime + 1e-12 >= nextClock { sendClock(simTime) }
        publishTopics(world: world, envs: ids, simTime: simTime)
        publishEvents(world: world, envs: ids, simTime: simTime)
    }

    /// `/clock` at `simTime` now, whatever its period: the step loop waits there for a pacing client,
    /// which must hear that time to move on (a clock period longer than the client's horizon would
    /// otherwise hold both for good).
    func publishClock(simTime: Double) {
        refreshWanted()
        sendClock(simTime)
    }

    /// `/clock` at `simTime` when someone subscribes; the next periodic one is a period later.
    private func sendClock(_ simTime: Double) {
        guard clockWanted else { return }
        var m = RosgraphMsgs_Clock()
        m.clock = .init(seconds: simTime)
        clock.publish(m)
        nextClock = simTime + clockPeriod
    }

    /// After `/sim/reset` of `ids`: the new episodes' first messages (every topic is due at an
    /// episode start), then the episode events.
    func publishReset(world: World, envs ids: [Int], simTime: Double) {
        refreshWanted()
        publishTopics(world: world, envs: ids, simTime: simTime)
        publishEvents(world: world, envs: ids, simTime: simTime)
    }

    private func publishTopics(world: World, envs ids: [Int], simTime: Double) {
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        var frames: [(slot: Int, snapshot: StateSnapshot)] = []
        for i in ids {
            let env = world.envs[i], epoch = env.episodeStarts
            if let cameras, !env.events.isEmpty { cameras.noteEpisode(env: i, epoch: epoch) }
            guard anyWanted[i] else { continue }
            func due(_ t: Int) -> Bool { wanted[i][t] && scheduler.due(env: i, topic: t, step: env.steps, epoch: epoch) }
            let (joints, tf, pose, odom, objects) = (due(Topic.jointStates), due(Topic.tf), due(Topic.robotPose), due(Topic.odom), due(Topic.objects))
            if tf || pose || odom || objects { world.computePoses(i) }
            if joints { topics[i].jointStates.publish(bodies.jointStateMessage(env, stamp)) }
            if tf { topics[i].tf.publish(bodies.transformsMessage(env, stamp)) }
            if pose { topics[i].robotPose.publish(bodies.robotPoseMessage(env, stamp)) }
            if odom { topics[i].odom.publish(bodies.odometryMessage(env, world, stamp)) }
            if objects { topics[i].objects.publish(bodies.objectArrayMessage(env, world, stamp)) }
            var snapshot: StateSnapshot?
            for c in 0..<cameraCount where due(Topic.firstCamera + c) {
                if snapshot == nil { snapshot = world.snapshot(i, stamp: simTime) }
                frames.append((i * cameraCount + c, snapshot!))
            }
        }
        cameras?.submit(frames)
    }

    func publishEvents(world: World, envs ids: [Int], simTime: Double) {
        let stamp = BuiltinInterfaces_Time(seconds: simTime)
        for i in ids where !world.envs[i].events.isEmpty {
            if episodeWanted[i] {
                for e in world.envs[i].events { topics[i].episode.publish(Robosim_EpisodeEvent(e, stamp: stamp)) }
            }
            world.envs[i].events.removeAll(keepingCapacity: true)
        }
    }
}
