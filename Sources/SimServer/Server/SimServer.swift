import BuiltinPlugins
import Foundation
import Logging
import Messaging
import PluginAPI
import ServiceLifecycle
import SimEngine
import Synchronization

/// The simulation server: loads a scene, hosts the hub, runs the world on its step loop, answers
/// the `/sim/*` services and publishes topics. A `Service` for swift-service-lifecycle: `run()`
/// returns after graceful shutdown.
public final class SimServer: Service, Sendable {
    public let configuration: SimServerConfiguration
    public let hub: Hub
    public let scene: Scene
    let world: World
    let leases: LeaseTable
    /// Same-host step channels (`/sim/open_channel`).
    let channels: StepChannels
    /// Reward expressions and statistics by lease (`/sim/set_reward`, `/sim/reward_statistics`).
    let rewards: LeaseRewards
    private let logger: Logger
    // Invariant: set once in run() before services that read it can be called, read-only after.
    private let loop = Mutex<StepLoop?>(nil)
    /// Command topics, checked by the safety layer and held for the step loop.
    let inbox: CommandInbox
    /// The scene's cameras, and the rendering backend in use (`.none`: cameras off).
    let cameraSpecs: [CameraSpec]
    /// The backend loaded at init, and what the log and errors say about it; after `start()`,
    /// `none` when no render thread could start under `auto` (cameras off, physics on).
    var renderBackend: RenderBackend { rendering.withLock { $0.backend } }
    var renderDescription: String { rendering.withLock { $0.description } }
    private let rendering: Mutex<(backend: RenderBackend, description: String)>
    /// Render threads (each with its own GL context).
    let renderThreads: Int
    // Invariant: written once in start() under `loop`'s lock; keeps the command subscriptions alive.
    private let commandSubscriptions = Mutex<[CallbackSubscription]>([])
    /// `/sim/describe`'s topic list for the rates and backend it was built with.
    private let topicCache = Mutex<(rates: TopicRates, backend: RenderBackend, topics: [Robosim_TopicInfo])?>(nil)

    /// Loads the scene and its plugins and binds the hub's sockets. Throws `SceneError` (file,
    /// place, problem), `PluginLoadError` or `HubError`, each a one-line reason.
    public init(configuration: SimServerConfiguration, registry: PluginRegistry = PluginRegistry(),
                context: ZMQContext = .shared, logger: Logger = Logger(label: "robosim.server")) throws {
        self.configuration = configuration
        self.logger = logger
        scene = try Scene(directory: configuration.scene)
        BuiltinPlugins.register(into: registry)
        // Manifest names are registered names, never paths (checked before any library is opened).
        try PluginLoader.checkName(scene.manifest.robot, place: "robot", manifest: scene.manifestPath, folders: configuration.pluginPaths)
        try PluginLoader.checkName(scene.manifest.task, place: "task", manifest: scene.manifestPath, folders: configuration.pluginPaths)
        for path in configuration.pluginPaths { try PluginLoader.loadAll(in: path, into: registry, logger: logger) }
        guard let robotType = registry.robots[scene.manifest.robot] else {
            throw SceneError(file: scene.manifestPath, place: "robot",
                             problem: "no robot plugin '\(scene.manifest.robot)' (available: \(registry.robots.keys.sorted().joined(separator: ", ")))")
        }
        guard let taskType = registry.tasks[scene.manifest.task] else {
            throw SceneError(file: scene.manifestPath, place: "task",
                             problem: "no task plugin '\(scene.manifest.task)' (available: \(registry.tasks.keys.sorted().joined(separator: ", ")))")
        }
        let envCount = configuration.envCount ?? scene.manifest.defaultEnvs
        world = try World(scene: scene, taskType: taskType, robotType: robotType, envCount: envCount, seed: configuration.seed,
                          threads: configuration.threads ?? ProcessInfo.processInfo.activeProcessorCount,
                          actionTopic: { Names.env($0) + "/action" })
        cameraSpecs = try CameraSpec.resolve(scene.manifest.cameras, model: world.model, manifestPath: scene.manifestPath)
        renderThreads = configuration.renderThreads ?? min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
        if cameraSpecs.isEmpty || configuration.renderBackend == .none {
            rendering = Mutex((.none, cameraSpecs.isEmpty ? "no cameras in the scene" : "--render-backend none"))
        } else if configuration.renderBackend == .auto {
            // Automatic: a machine without any renderer still runs physics; the cameras are off and the log says why.
            do {
                rendering = Mutex(try RenderBackend.load(.auto, renderThreads: renderThreads))
            } catch {
                logger.warning("cameras are off: no offscreen renderer", metadata: ["sim.render_error": "\(error)"])
                rendering = Mutex((.none, error.description))
            }
        } else {
            rendering = Mutex(try RenderBackend.load(configuration.renderBackend, renderThreads: renderThreads))
        }
        leases = LeaseTable(envCount: envCount)
        channels = StepChannels(logger: logger)
        rewards = LeaseRewards(terms: world.description.rewardTerms.count)
        inbox = CommandInbox(envCount: envCount, actions: world.actions, mode: configuration.mode,
                             safety: SafetyLayer(robot: world.robot?.spec, workspace: scene.workspace))
        var hubConfiguration = try HubConfiguration(listen: configuration.listen)
        hubConfiguration.maxFrameBytes = configuration.maxFrameBytes
        hubConfiguration.security = configuration.security
        hubConfiguration.allowInsecure = configuration.allowInsecure
        hub = try Hub(configuration: hubConfiguration, context: context, logger: logger)
        try registerServices()
    }

    func loopIfRunning() -> StepLoop? { loop.withLock { $0 } }

    /// The command topics of env `i` with their message types, by what the robot takes.
    func commandTopics(_ i: Int) -> [(name: String, type: String)] {
        let ns = Names.env(i)
        var out = [("\(ns)/action", rosTypeName(of: Robosim_Action.self))]
        guard let spec = world.robot?.spec else { return out }
        if !spec.joints.isEmpty { out.append(("\(ns)/joint_commands", rosTypeName(of: TrajectoryMsgs_JointTrajectoryPoint.self))) }
        if spec.endEffectorSite != nil { out.append(("\(ns)/ee_target", rosTypeName(of: GeometryMsgs_PoseStamped.self))) }
        if spec.drive != nil { out.append(("\(ns)/cmd_vel", rosTypeName(of: GeometryMsgs_Twist.self))) }
        return out
    }

    /// Frame counters of the cameras (nil before start, or without cameras).
    public var cameraStatistics: CameraStatistics? { loopIfRunning()?.cameras?.statistics }

    /// Number of environments.
    public var envCount: Int { world.envs.count }

    /// The `/sim/describe` answer.
    public func describe() -> Robosim_DescribeResponse {
        var d = hub.baseDescription()
        d.scene = scene.manifest.name
        d.envCount = UInt32(world.envs.count)
        d.mode = configuration.mode.rawValue
        d.observationSize = UInt32(world.observationSize)
        d.actionSize = UInt32(world.actionSize)
        d.actionLow = world.actionLow
        d.actionHigh = world.actionHigh
        d.physicsDt = world.configuration.physicsDt
        d.decimation = UInt32(world.configuration.decimation)
        d.simTime = loop.withLock { $0.map { Double(bitPattern: $0.simTimeBits.load(ordering: .relaxed)) } } ?? 0
        d.version = "\(RoboSimVersion.string) (MuJoCo \(World.mujocoVersion), libzmq \(ZMQContext.libraryVersion))"
        d.task = Robosim_TaskDescription(world.description)
        d.commands = inbox.statistics()
        d.renderBackend = renderBackend.rawValue
        let rates = loopParameters.rates
        d.cameras = cameraSpecs.map { c in
            var out = Robosim_CameraDescription()
            out.name = c.name
            out.width = UInt32(c.width)
            out.height = UInt32(c.height)
            out.fovyDeg = c.fovyDegrees
            out.rateHz = rates["camera.\(c.name)"]
            out.rgb = c.rgb
            out.depth = c.depth
            out.observation = c.observation
            out.frameID = c.frameID
            return out
        }
        d.topics = describedTopics()
        return d
    }

    /// Every topic with its type and rate: built once per set of rates in force (thousands of
    /// entries with many envs; `/sim/describe` answers from the copy). Any thread.
    private func describedTopics() -> [Robosim_TopicInfo] {
        let rates = loopParameters.rates   // in force now (`/sim/set_parameters` changes them)
        let backend = renderBackend
        if let cached = topicCache.withLock({ $0 }), cached.rates == rates, cached.backend == backend { return cached.topics }
        func topic<M: SwiftProtobuf.Message>(_ name: String, _ type: M.Type, _ rate: Double) -> Robosim_TopicInfo {
            var t = Robosim_TopicInfo()
            t.name = name
            t.type = rosTypeName(of: type)
            t.rateHz = rate
            return t
        }
        var topics = [topic("/clock", RosgraphMsgs_Clock.self, configuration.clockRateHz)]
        let frames = BodyFrames(world: world)
        for i in 0..<world.envs.count {
            let ns = Names.env(i)
            topics.append(topic("\(ns)/joint_states", SensorMsgs_JointState.self, rates["joint_states"]))
            topics.append(topic("\(ns)/tf", Tf2Msgs_TFMessage.self, rates["tf"]))
            if frames.hasRobotPose { topics.append(topic("\(ns)/robot/pose", GeometryMsgs_PoseStamped.self, rates["robot_pose"])) }
            if frames.mobile { topics.append(topic("\(ns)/odom", NavMsgs_Odometry.self, rates["odom"])) }
            if !world.task.objectBodies.isEmpty { topics.append(topic("\(ns)/objects", Robosim_ObjectArray.self, rates["objects"])) }
            topics.append(topic("\(ns)/episode", Robosim_EpisodeEvent.self, 0))
            for c in cameraSpecs where backend != .none {
                let base = "\(ns)/camera/\(c.name)"
                let hz = rates["camera.\(c.name)"]
                if c.rgb { topics.append(topic(base + "/image_raw", SensorMsgs_Image.self, hz)) }
                if c.depth { topics.append(topic(base + "/depth", SensorMsgs_Image.self, hz)) }
                topics.append(topic(base + "/camera_info", SensorMsgs_CameraInfo.self, hz))
            }
            for c in commandTopics(i) {
                var t = Robosim_TopicInfo()
                t.name = c.name
                t.type = c.type
                topics.append(t)
            }
        }
        topicCache.withLock { $0 = (rates, backend, topics) }
        return topics
    }

    /// Starts the hub, the server's node and the step loop on their own threads; returns when the
    /// server answers calls. Idempotent. `run()` calls it; tests may call it first.
    public func start() throws {
        try loop.withLock { current in
            guard current == nil else { return }
            hub.start()
            var cameras: CameraPublisher?
            do {
                let node = try Node(name: "sim_server", hub: hub)
                if renderBackend != .none {
                    do {
                        cameras = try CameraPublisher(cameras: cameraSpecs, world: world, node: node, backend: renderBackend,
                                                      description: renderDescription, settings: scene.manifest.render ?? .init(),
                                                      threads: renderThreads)
                    } catch where configuration.renderBackend == .auto {
                        logger.warning("cameras are off: no render thread could start", metadata: ["sim.render_error": "\(error)"])
                        rendering.withLock { $0 = (.none, "\($0.description) failed: \(error)") }
                    }
                }
                let publisher = try StepPublisher(node: node, hub: hub, world: world, scene: scene, cameraSpecs: cameraSpecs,
                                                  clockRateHz: configuration.clockRateHz, cameras: cameras)
                let inbox = self.inbox
                var subscriptions: [CallbackSubscription] = []
                for i in 0..<world.envs.count {
                    for (name, _) in commandTopics(i) {
                        switch name.split(separator: "/").last {
                        case "action":
                            subscriptions.append(try node.onMessage(name, Robosim_Action.self) { inbox.submitAction(env: i, topic: name, data: $0.data) })
                        case "joint_commands":
                            subscriptions.append(try node.onMessage(name, TrajectoryMsgs_JointTrajectoryPoint.self) {
                                inbox.submit(env: i, topic: name, point: $0)
                            })
                        case "ee_target":
                            subscriptions.append(try node.onMessage(name, GeometryMsgs_PoseStamped.self) { inbox.submit(env: i, topic: name, pose: $0) })
                        case "cmd_vel":
                            subscriptions.append(try node.onMessage(name, GeometryMsgs_Twist.self) { inbox.submit(env: i, topic: name, twist: $0) })
                        default:
                            break
                        }
                    }
                }
                let stepLoop = StepLoop(world: world, mode: configuration.mode, realTimeFactor: configuration.realTimeFactor,
                                        node: node, inbox: inbox, publisher: publisher, logger: logger)
                if configuration.mode == .realtime {
                    subscriptions.append(try node.onMessage("/pace", Robosim_Pace.self) { stepLoop.receive(pace: $0) })
                }
                commandSubscriptions.withLock { $0 = subscriptions }
                stepLoop.start()
                current = stepLoop
            } catch {
                cameras?.stop()
                hub.shutdown()
                throw error
            }
        }
        logger.info("sim-server ready", metadata: [
            "sim.scene": "\(scene.manifest.name)", "sim.envs": "\(world.envs.count)", "sim.mode": "\(configuration.mode.rawValue)",
            "sim.threads": "\(world.threads)", "sim.render": "\(renderDescription)",
        ])
    }

    /// Stops the render threads (a render in progress fails after its current frame, so a long
    /// render never holds up a shutdown), the step channels, the step loop (queued calls get `UNAVAILABLE`), the node
    /// and the hub. Idempotent.
    public func stop() {
        let stepLoop = loop.withLock { $0 }
        stepLoop?.stopping()
        stepLoop?.cameras?.stop()
        channels.closeAll()  // after the cameras: a channel waiting behind a long render is let go
        stepLoop?.stop()
        stepLoop?.node.close()
        hub.shutdown()
    }

    /// Starts (if not yet started), runs until graceful shutdown (SIGINT/SIGTERM through the
    /// ServiceGroup) or cancellation, then stops.
    public func run() async throws {
        try start()
        try? await gracefulShutdown()
        logger.info("sim-server shutting down")
        stop()
    }
}

import SwiftProtobuf
