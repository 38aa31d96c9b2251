import BuiltinPlugins
import CMuJoCo
import Foundation
import Logging
import Messaging
import PluginAPI
import ServiceLifecycle
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
    private let logger: Logger
    // Invariant: set once in run() before services that read it can be called, read-only after.
    private let loop = Mutex<StepLoop?>(nil)
    /// Command topics, checked by the safety layer and held for the step loop.
    let inbox: CommandInbox
    // Invariant: written once in start() under `loop`'s lock; keeps the command subscriptions alive.
    private let commandSubscriptions = Mutex<[CallbackSubscription]>([])

    /// Loads the scene and its plugins and binds the hub's sockets. Throws `SceneError` (file,
    /// place, problem), `PluginLoadError` or `HubError`, each a one-line reason.
    public init(configuration: SimServerConfiguration, registry: PluginRegistry = PluginRegistry(),
                context: ZMQContext = .shared, logger: Logger = Logger(label: "robosim.server")) throws {
        self.configuration = configuration
        self.logger = logger
        robosim_mj_install_handlers()
        scene = try Scene(directory: configuration.scene)
        BuiltinPlugins.register(into: registry)
        for path in configuration.pluginPaths { try PluginLoader.loadAll(in: path, into: registry, logger: logger) }
        guard let taskType = registry.tasks[scene.manifest.task] else {
            throw SceneError(file: scene.manifestPath, place: "task",
                             problem: "no task plugin '\(scene.manifest.task)' (available: \(registry.tasks.keys.sorted().joined(separator: ", ")))")
        }
        let envCount = configuration.envCount ?? scene.manifest.defaultEnvs
        world = try World(scene: scene, taskType: taskType, envCount: envCount, seed: configuration.seed,
                          threads: configuration.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        leases = LeaseTable(envCount: envCount)
        inbox = CommandInbox(envCount: envCount, actionLow: world.actionLow, actionHigh: world.actionHigh, mode: configuration.mode)
        var hubConfiguration = try HubConfiguration(listen: configuration.listen)
        hubConfiguration.maxFrameBytes = configuration.maxFrameBytes
        hub = try Hub(configuration: hubConfiguration, context: context, logger: logger)
        try registerServices()
    }

    func loopIfRunning() -> StepLoop? { loop.withLock { $0 } }

    /// For differential-drive scenes whose action is (forward speed, turn rate) as fractions of the
    /// manifest's limits: the limits `cmd_vel` is checked against. Nil for other robots.
    var driveLimits: CommandInbox.DriveLimits? {
        guard scene.manifest.robot == "diff_drive", world.actionSize == 2,
              let linear = scene.manifest.parameters["max_linear_velocity"], let angular = scene.manifest.parameters["max_angular_velocity"]
        else { return nil }
        return CommandInbox.DriveLimits(linear: linear, angular: angular)
    }

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
        d.version = "\(RoboSimVersion.string) (MuJoCo \(String(cString: mj_versionString())), libzmq \(ZMQContext.libraryVersion))"
        func topic<M: SwiftProtobuf.Message>(_ name: String, _ type: M.Type, _ rate: Double) -> Robosim_TopicInfo {
            var t = Robosim_TopicInfo()
            t.name = name
            t.type = rosTypeName(of: type)
            t.rateHz = rate
            return t
        }
        d.commands = inbox.statistics()
        d.topics = [topic("/clock", RosgraphMsgs_Clock.self, configuration.clockRateHz)]
        let rates = loopParameters.rates   // in force now (`/sim/set_parameters` changes them)
        let mobile = scene.manifest.robot == "diff_drive" && world.task.robotBody != nil
        for i in 0..<world.envs.count {
            let ns = Names.env(i)
            d.topics.append(topic("\(ns)/joint_states", SensorMsgs_JointState.self, rates["joint_states"]))
            d.topics.append(topic("\(ns)/tf", Tf2Msgs_TFMessage.self, rates["tf"]))
            if world.task.robotBody != nil { d.topics.append(topic("\(ns)/robot/pose", GeometryMsgs_PoseStamped.self, rates["robot_pose"])) }
            if mobile { d.topics.append(topic("\(ns)/odom", NavMsgs_Odometry.self, rates["odom"])) }
            if !world.task.objectBodies.isEmpty { d.topics.append(topic("\(ns)/objects", Robosim_ObjectArray.self, rates["objects"])) }
            d.topics.append(topic("\(Names.env(i))/episode", Robosim_EpisodeEvent.self, 0))
            d.topics.append(topic("\(Names.env(i))/action", Robosim_Action.self, 0))
        }
        return d
    }

    /// Starts the hub, the server's node and the step loop on their own threads; returns when the
    /// server answers calls. Idempotent. `run()` calls it; tests may call it first.
    public func start() throws {
        try loop.withLock { current in
            guard current == nil else { return }
            hub.start()
            do {
                let node = try Node(name: "sim_server", hub: hub)
                let publisher = try StepPublisher(node: node, hub: hub, world: world, scene: scene, clockRateHz: configuration.clockRateHz)
                let inbox = self.inbox
                var subscriptions: [CallbackSubscription] = []
                let drive = driveLimits
                for i in 0..<world.envs.count {
                    let action = "\(Names.env(i))/action"
                    subscriptions.append(try node.onMessage(action, Robosim_Action.self) { inbox.submitAction(env: i, topic: action, data: $0.data) })
                    if let drive {
                        let cmdVel = "\(Names.env(i))/cmd_vel"
                        subscriptions.append(try node.onMessage(cmdVel, GeometryMsgs_Twist.self) {
                            inbox.submitTwist(env: i, topic: cmdVel, twist: $0, limits: drive)
                        })
                    }
                }
                commandSubscriptions.withLock { $0 = subscriptions }
                let stepLoop = StepLoop(world: world, mode: configuration.mode, realTimeFactor: configuration.realTimeFactor,
                                        node: node, inbox: inbox, publisher: publisher, logger: logger)
                stepLoop.start()
                current = stepLoop
            } catch {
                hub.shutdown()
                throw error
            }
        }
        logger.info("sim-server ready", metadata: [
            "sim.scene": "\(scene.manifest.name)", "sim.envs": "\(world.envs.count)", "sim.mode": "\(configuration.mode.rawValue)",
            "sim.threads": "\(world.threads)",
        ])
    }

    /// Stops the step loop (queued calls get `UNAVAILABLE`), the node and the hub. Idempotent.
    public func stop() {
        let stepLoop = loop.withLock { $0 }
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
