/// One environment's simulation state, as views into its MuJoCo data. Valid only during the plugin
/// call it is passed to; never keep it. Units: metres, radians, seconds, newtons.
///
/// Thread safety: the server calls plugins for different environments concurrently; a plugin
/// writes only through the `EnvView` it was given and its own per-environment state.
public struct EnvView {
    /// The environment's index (0..<envCount).
    public let index: Int
    /// Sim time of this environment in seconds since its episode started.
    public let time: Double
    /// Generalized positions and velocities (read-write in reset, read-only after physics).
    public let qpos: UnsafeMutableBufferPointer<Double>
    public let qvel: UnsafeMutableBufferPointer<Double>
    /// Actuator controls (write in pre-step).
    public let ctrl: UnsafeMutableBufferPointer<Double>
    /// Body positions (nbody x 3) and orientations (nbody x 4, w x y z) in the world frame.
    public let xpos: UnsafeBufferPointer<Double>
    public let xquat: UnsafeBufferPointer<Double>
    /// Site positions (nsite x 3) and orientations (nsite x 9, row-major rotation matrices).
    public let siteXpos: UnsafeBufferPointer<Double>
    public let siteXmat: UnsafeBufferPointer<Double>
    /// The reset randomization ranges in force now (the manifest's, as changed at run time through
    /// `/sim/set_parameters`); read them in `reset`. Empty when the caller gave none.
    public let resetRanges: ResetRanges

    /// `resetRanges` (API version 2) defaults to none, so callers written for version 1 still compile.
    public init(index: Int, time: Double, qpos: UnsafeMutableBufferPointer<Double>, qvel: UnsafeMutableBufferPointer<Double>,
                ctrl: UnsafeMutableBufferPointer<Double>, xpos: UnsafeBufferPointer<Double>, xquat: UnsafeBufferPointer<Double>,
                siteXpos: UnsafeBufferPointer<Double>, siteXmat: UnsafeBufferPointer<Double>, resetRanges: ResetRanges = ResetRanges()) {
        self.index = index
        self.time = time
        self.qpos = qpos
        self.qvel = qvel
        self.ctrl = ctrl
        self.xpos = xpos
        self.xquat = xquat
        self.siteXpos = siteXpos
        self.siteXmat = siteXmat
        self.resetRanges = resetRanges
    }

    /// The reset range `name` in force now, or `fallback` when there is none. Read it in `reset`
    /// (falling back to the configuration's value), so that run-time changes apply at the next reset:
    /// `random.uniform(env.range("pole_angle", default: configuredPoleAngle))`.
    public func range(_ name: String, default fallback: ClosedRange<Double>) -> ClosedRange<Double> {
        resetRanges.range(name, default: fallback)
    }

    /// Position of body `b` in the world frame.
    public func bodyPosition(_ b: Int) -> SIMD3<Double> { SIMD3(xpos[3 * b], xpos[3 * b + 1], xpos[3 * b + 2]) }
    /// Position of site `s` in the world frame.
    public func sitePosition(_ s: Int) -> SIMD3<Double> { SIMD3(siteXpos[3 * s], siteXpos[3 * s + 1], siteXpos[3 * s + 2]) }
}
