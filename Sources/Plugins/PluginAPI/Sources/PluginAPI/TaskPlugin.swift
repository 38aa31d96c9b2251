/// What a task plugin is configured with: the scene manifest's values (CLI flags already applied).
public struct TaskConfiguration: Sendable {
    public let scene: String
    public let envCount: Int
    /// Physics timestep in seconds, and physics steps per control step.
    public let physicsDt: Double
    public let decimation: Int
    /// Episode length in seconds of sim time (the server truncates episodes at this length).
    public let episodeLength: Double
    /// Reset randomization ranges by name (the manifest's `reset`), as they were at start-up. They can
    /// change at run time (`/sim/set_parameters`): read the ranges in force in `reset` through
    /// `EnvView.range(_:default:)`, with these as the fallback.
    public let resetRanges: [String: ClosedRange<Double>]
    /// Task parameters by name (the manifest's `parameters`).
    public let parameters: [String: Double]

    public init(scene: String, envCount: Int, physicsDt: Double, decimation: Int, episodeLength: Double,
                resetRanges: [String: ClosedRange<Double>], parameters: [String: Double]) {
        self.scene = scene
        self.envCount = envCount
        self.physicsDt = physicsDt
        self.decimation = decimation
        self.episodeLength = episodeLength
        self.resetRanges = resetRanges
        self.parameters = parameters
    }

    /// Seconds per control step.
    public var controlDt: Double { physicsDt * Double(decimation) }

    /// The range `name`, or `fallback` when the manifest has none.
    public func range(_ name: String, default fallback: ClosedRange<Double>) -> ClosedRange<Double> { resetRanges[name] ?? fallback }

    /// The parameter `name`, or `fallback`.
    public func parameter(_ name: String, default fallback: Double) -> Double { parameters[name] ?? fallback }
}

/// What a task reports after each control step (post-step).
public struct StepStatus: Sendable, Equatable {
    /// The episode ended by the task's own rule (failure or success), not by the time limit.
    public var terminated: Bool
    /// The task is achieved (reported in episode events and datasets).
    public var success: Bool
    public init(terminated: Bool = false, success: Bool = false) {
        self.terminated = terminated
        self.success = success
    }
}

/// A task: reset randomization, observation, named and weighted reward terms, termination and
/// success. The server owns stepping, time limits (truncation), auto-reset and divergence.
///
/// Phases, in order, each called for one environment at a time but for different environments
/// concurrently (a task keeps any per-environment state in storage indexed by `EnvView.index`):
/// - configure: `init(model:configuration:)`, once;
/// - reset(seed): `reset(_:random:)` at every episode start, after the server restored the model's
///   initial state; write `qpos`/`qvel` here, drawing from the ranges in force (`env.range(_:default:)`);
/// - pre-step: `preStep(_:action:)` before each control step; write `ctrl` from the action
///   (the server has already checked its size and finiteness and clipped it to the action bounds);
/// - post-step (read only): `postStep(_:observation:terms:)` after each control step.
public protocol TaskPlugin: AnyObject, Sendable {
    /// The name scene manifests use (`"cartpole"`).
    static var name: String { get }

    init(model: ModelView, configuration: TaskConfiguration) throws(PluginError)

    var observationSize: Int { get }
    var actionSize: Int { get }
    /// The observation's components, in order (`observationSize` of them), with units. Clients
    /// find values by these names; datasets record them. Default: `obs_0`, `obs_1`...
    var observationNames: [Quantity] { get }
    /// The observation components (names from `observationNames`) that describe the environment,
    /// the things the robot acts on, rather than the robot itself: the pole of a cartpole, the
    /// pushed T-bar. Datasets record them as LeRobot's `observation.environment_state` and the rest
    /// as `observation.state`, as LeRobot's own PushT does (policies such as ACT and Diffusion
    /// take an environment state in place of an image). Default: none.
    var environmentObservations: [String] { get }
    /// The action's components, in order (`actionSize` of them). Default: `action_0`, `action_1`...
    var actionNames: [Quantity] { get }
    /// What success means, in one sentence (`/sim/describe`); empty (default) when the task never
    /// reports success.
    var successCriterion: String { get }
    /// Discrete actions: the number of choices (> 1) when the action is one value, an index in
    /// `0..<actionChoices` (`actionSize` must be 1, the bounds 0 and `actionChoices - 1`); 0
    /// (default) for continuous actions. The server refuses an index that is not a whole number in
    /// range instead of clipping it.
    var actionChoices: Int { get }
    /// Action bounds (default -1...1 for every component).
    var actionLow: [Double] { get }
    var actionHigh: [Double] { get }
    /// Reward terms and weights (default none: reward 0).
    var rewardTerms: [RewardTerm] { get }
    /// The body whose pose is `/env_i/robot/pose` (end effector or mobile base; default none).
    var robotBody: String? { get }
    /// Bodies published on `/env_i/objects` (the task's objects; default none).
    var objectBodies: [String] { get }
    /// Whether post-step reads body or site poses (`xpos`, `xquat`, `siteXpos`, `siteXmat`). A task
    /// that reads only `qpos`/`qvel` says false and saves one forward-kinematics pass per step
    /// (default true).
    var usesPoses: Bool { get }

    func reset(_ env: EnvView, random: inout RandomSource)
    func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>)
    /// Pre-step, after `preStep`: a command for the scene's robot made from the action (an arm task
    /// whose action is an end-effector motion, say), or nil (default) when `preStep` wrote the
    /// controls itself. The server checks it and moves the robot within its limits, as it does
    /// for commands on the robot's command topics.
    func robotCommand(_ env: EnvView, action: UnsafeBufferPointer<Double>) -> RobotCommand?
    /// Writes the observation and each reward term's unweighted value; returns termination and success.
    func postStep(_ env: EnvView, observation: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus
    /// Writes the observation only (after a reset).
    func observe(_ env: EnvView, into observation: UnsafeMutableBufferPointer<Double>)
}

extension TaskPlugin {
    public var observationNames: [Quantity] { Quantity.numbered("obs", count: observationSize) }
    public var environmentObservations: [String] { [] }
    public var actionNames: [Quantity] { Quantity.numbered("action", count: actionSize) }
    public var successCriterion: String { "" }
    public var actionChoices: Int { 0 }
    public var actionLow: [Double] { Array(repeating: -1, count: actionSize) }
    public var actionHigh: [Double] { Array(repeating: 1, count: actionSize) }
    public var rewardTerms: [RewardTerm] { [] }
    public var robotBody: String? { nil }
    public var objectBodies: [String] { [] }
    public var usesPoses: Bool { true }
    public func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>) {}
    public func robotCommand(_ env: EnvView, action: UnsafeBufferPointer<Double>) -> RobotCommand? { nil }
}

/// Where plugins register. The server creates one; built-in plugins register at start-up, dynamic
/// libraries from `--plugin-path` through their `robosim_register_plugins` entry point.
public final class PluginRegistry: @unchecked Sendable {
    // Invariant: mutated only during start-up, on one thread, before the world exists.
    public private(set) var tasks: [String: any TaskPlugin.Type] = [:]
    public private(set) var robots: [String: any RobotPlugin.Type] = [:]

    public init() {}

    /// Registers a task type under its `name` (a later registration of the same name replaces it).
    public func register(task: any TaskPlugin.Type) {
        tasks[task.name] = task
    }

    /// Registers a robot type under `name` (default: its own `name`), so one type can serve
    /// several scenes' robot names.
    public func register(robot: any RobotPlugin.Type, as name: String? = nil) {
        robots[name ?? robot.name] = robot
    }
}

/// The C entry points a dynamic plugin library exports (see docs/plugins.md):
///
///     @_cdecl("robosim_plugin_api_version")
///     public func robosimPluginAPIVersion() -> Int32 { Int32(PluginAPIVersion.current) }
///
///     @_cdecl("robosim_register_plugins")
///     public func robosimRegisterPlugins(_ registry: UnsafeMutableRawPointer) {
///         PluginRegistry.from(registry).register(task: MyTask.self)
///     }
extension PluginRegistry {
    /// The registry behind the opaque pointer the server passes to `robosim_register_plugins`.
    public static func from(_ pointer: UnsafeMutableRawPointer) -> PluginRegistry {
        Unmanaged<PluginRegistry>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The opaque pointer to pass to a plugin's `robosim_register_plugins`.
    public var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}
