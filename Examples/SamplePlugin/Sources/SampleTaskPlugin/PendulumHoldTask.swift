import PluginAPI

/// Hold a pendulum at a target angle drawn at each reset.
///
/// - Model: a hinge joint `hinge` and a torque motor `motor` (Scenes/test/pendulum_hold).
/// - Observation (3): angle error (target - angle, rad), angular velocity (rad/s), target (rad).
/// - Action (1) in -1...1, mapped onto the motor's control range.
/// - Reward terms: `error` (|angle error|) weight -1, `effort` (action²) weight -0.01.
/// - Success (and termination) when |error| < `tolerance` (default 0.05 rad) and |velocity| < 0.1.
/// - Reset ranges: `target` (default ±1 rad), `angle` (default 0...0), read at each reset (run-time
///   changes through `/sim/set_parameters` apply from the next episode).
public final class PendulumHoldTask: TaskPlugin {
    public static let name = "pendulum_hold"

    let hinge: ModelView.Joint
    let motor: Int
    let torque: ClosedRange<Double>
    /// The configured reset ranges: the fallback when the env carries none.
    let targetRange: ClosedRange<Double>
    let angleRange: ClosedRange<Double>
    let tolerance: Double
    /// Each env's target angle, set at its reset.
    let targets: PerEnv<Double>

    public init(model: ModelView, configuration: TaskConfiguration) throws(PluginError) {
        hinge = try model.joint("hinge")
        motor = try model.actuator("motor")
        torque = model.controlRanges[motor] ?? -1...1
        targetRange = configuration.range("target", default: -1...1)
        angleRange = configuration.range("angle", default: 0...0)
        tolerance = configuration.parameter("tolerance", default: 0.05)
        targets = PerEnv(count: configuration.envCount, initial: 0)
    }

    public var observationSize: Int { 3 }
    public var actionSize: Int { 1 }
    // The task describes itself (`/sim/describe`, dataset feature names): names and units per component.
    public var observationNames: [Quantity] { [Quantity("angle_error", "rad"), Quantity("angular_velocity", "rad/s"), Quantity("target", "rad")] }
    public var actionNames: [Quantity] { [Quantity("torque", "1")] }
    public var successCriterion: String { "the pendulum rests within tolerance of its target angle" }
    public var rewardTerms: [RewardTerm] { [RewardTerm("error", weight: -1), RewardTerm("effort", weight: -0.01)] }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        targets[env.index] = random.uniform(env.range("target", default: targetRange))
        env.qpos[hinge.qposAddress] = random.uniform(env.range("angle", default: angleRange))
    }

    public func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>) {
        env.ctrl[motor] = torque.lowerBound + (action[0] + 1) / 2 * (torque.upperBound - torque.lowerBound)
    }

    public func observe(_ env: EnvView, into o: UnsafeMutableBufferPointer<Double>) {
        o[0] = targets[env.index] - env.qpos[hinge.qposAddress]
        o[1] = env.qvel[hinge.dofAddress]
        o[2] = targets[env.index]
    }

    public func postStep(_ env: EnvView, observation o: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus {
        observe(env, into: o)
        let range = torque.upperBound - torque.lowerBound
        let action = range > 0 ? 2 * (env.ctrl[motor] - torque.lowerBound) / range - 1 : 0
        terms[0] = abs(o[0])
        terms[1] = action * action
        let held = abs(o[0]) < tolerance && abs(o[1]) < 0.1
        return StepStatus(terminated: held, success: held)
    }
}

// The two C entry points sim-server looks for.

@_cdecl("robosim_plugin_api_version")
public func robosimPluginAPIVersion() -> Int32 { Int32(PluginAPIVersion.current) }

@_cdecl("robosim_register_plugins")
public func robosimRegisterPlugins(_ registry: UnsafeMutableRawPointer) {
    PluginRegistry.from(registry).register(task: PendulumHoldTask.self)
}
