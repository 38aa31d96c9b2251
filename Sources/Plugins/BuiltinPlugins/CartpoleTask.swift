import PluginAPI

/// Isaac Lab's Cartpole direct task (`Isaac-Cartpole-Direct-v0`), on MuJoCo.
///
/// - Observation (4): pole angle (rad), pole angular velocity (rad/s), cart position (m), cart
///   velocity (m/s), in that order.
/// - Action (1) in -1...1, scaled by `action_scale` (default 100) to a force in newtons on the cart;
///   with `discrete_actions` N > 1, an index of N pushes evenly spaced over -1...1 instead.
/// - Reward terms (unweighted value × weight): `alive` (1 while not terminated) × 1,
///   `terminated` (1 on failure) × -2, `pole_pos` (angle²) × -1, `cart_vel` (|v|) × -0.01,
///   `pole_vel` (|ω|) × -0.005; weights from the manifest's `rew_*` parameters.
/// - Terminated when |cart position| > `max_cart_pos` (default 3 m) or |pole angle| > π/2.
/// - Success (RoboSim's; Isaac Lab reports none): the episode reaches its time limit without failing.
/// - Reset: pole angle uniform in `reset.pole_angle` (default ±0.25π), cart at `reset.cart_position`;
///   the ranges in force at each reset (they can be changed at run time through `/sim/set_parameters`).
///
/// Model names: slide joint `slider_to_cart`, hinge `cart_to_pole`, actuator `cart_force`.
public final class CartpoleTask: TaskPlugin {
    public static let name = "cartpole"

    let cart: ModelView.Joint
    let pole: ModelView.Joint
    let actuator: Int
    let actionScale: Double
    let maxCartPosition: Double
    /// The configured reset ranges: the fallback when the env carries none.
    let poleAngleRange: ClosedRange<Double>
    let cartPositionRange: ClosedRange<Double>
    public let rewardTerms: [RewardTerm]
    /// `discrete_actions` > 1: the action is an index of that many pushes evenly spaced over
    /// -1...1 (2: full force left or right, as gymnasium's CartPole); 0: a continuous push.
    public let actionChoices: Int
    /// Control steps per episode (the server's time limit) and each env's steps so far.
    let episodeSteps: Int
    let steps: PerEnv<Int>

    public init(model: ModelView, configuration: TaskConfiguration) throws(PluginError) {
        cart = try model.joint("slider_to_cart")
        pole = try model.joint("cart_to_pole")
        actuator = try model.actuator("cart_force")
        let p = configuration
        actionScale = p.parameter("action_scale", default: 100)
        maxCartPosition = p.parameter("max_cart_pos", default: 3)
        poleAngleRange = p.range("pole_angle", default: -0.25 * Double.pi...0.25 * Double.pi)
        cartPositionRange = p.range("cart_position", default: 0...0)
        let choices = p.parameter("discrete_actions", default: 0)
        guard choices == 0 || (choices >= 2 && choices <= 1024 && choices == choices.rounded()) else {
            throw PluginError("discrete_actions must be 0 (continuous) or a whole number in 2...1024, not \(choices)")
        }
        actionChoices = Int(choices)
        episodeSteps = max(1, Int((p.episodeLength / p.controlDt).rounded()))
        steps = PerEnv(count: p.envCount, initial: 0)
        rewardTerms = [
            RewardTerm("alive", weight: p.parameter("rew_alive", default: 1)),
            RewardTerm("terminated", weight: p.parameter("rew_terminated", default: -2)),
            RewardTerm("pole_pos", weight: p.parameter("rew_pole_pos", default: -1)),
            RewardTerm("cart_vel", weight: p.parameter("rew_cart_vel", default: -0.01)),
            RewardTerm("pole_vel", weight: p.parameter("rew_pole_vel", default: -0.005)),
        ]
    }

    public var observationSize: Int { 4 }
    public var actionSize: Int { 1 }
    public var observationNames: [Quantity] {
        [Quantity("pole_angle", "rad"), Quantity("pole_angular_velocity", "rad/s"), Quantity("cart_position", "m"), Quantity("cart_velocity", "m/s")]
    }
    /// The pole is what the cart acts on; the cart is the robot.
    public var environmentObservations: [String] { ["pole_angle", "pole_angular_velocity"] }
    /// The cart force as a fraction of `action_scale` (discrete: the index of the push).
    public var actionNames: [Quantity] { [Quantity(actionChoices > 0 ? "push" : "cart_force", actionChoices > 0 ? "" : "1")] }
    public var successCriterion: String { "the pole stays within 90° of upright and the cart within max_cart_pos until the time limit" }
    /// Reads only qpos and qvel.
    public var usesPoses: Bool { false }

    public func reset(_ env: EnvView, random: inout RandomSource) {
        env.qpos[cart.qposAddress] = random.uniform(env.range("cart_position", default: cartPositionRange))
        env.qpos[pole.qposAddress] = random.uniform(env.range("pole_angle", default: poleAngleRange))
        env.qvel[cart.dofAddress] = 0
        env.qvel[pole.dofAddress] = 0
        steps[env.index] = 0
    }

    public var actionLow: [Double] { [actionChoices > 0 ? 0 : -1] }
    public var actionHigh: [Double] { [actionChoices > 0 ? Double(actionChoices - 1) : 1] }

    public func preStep(_ env: EnvView, action: UnsafeBufferPointer<Double>) {
        let push = actionChoices > 0 ? -1 + 2 * action[0] / Double(actionChoices - 1) : action[0]
        env.ctrl[actuator] = push * actionScale
    }

    public func observe(_ env: EnvView, into o: UnsafeMutableBufferPointer<Double>) {
        o[0] = env.qpos[pole.qposAddress]
        o[1] = env.qvel[pole.dofAddress]
        o[2] = env.qpos[cart.qposAddress]
        o[3] = env.qvel[cart.dofAddress]
    }

    public func postStep(_ env: EnvView, observation o: UnsafeMutableBufferPointer<Double>, terms: UnsafeMutableBufferPointer<Double>) -> StepStatus {
        observe(env, into: o)
        let failed = abs(o[2]) > maxCartPosition || abs(o[0]) > Double.pi / 2
        terms[0] = failed ? 0 : 1
        terms[1] = failed ? 1 : 0
        terms[2] = o[0] * o[0]
        terms[3] = abs(o[3])
        terms[4] = abs(o[1])
        steps[env.index] += 1
        return StepStatus(terminated: failed, success: !failed && steps[env.index] >= episodeSteps)
    }
}
