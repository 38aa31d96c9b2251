/// Deterministic randomness for one environment's episode: a SplitMix64 stream whose seed is a
/// function of (run seed, env index, episode index) only, so results never depend on env count,
/// thread count or timing.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// The stream for `episode` of env `env` in a run with `seed`.
    public init(seed: UInt64, env: Int, episode: UInt64) {
        state = RandomSource.mix(seed ^ RandomSource.mix(UInt64(env) &+ 0x9E37_79B9_7F4A_7C15) ^ RandomSource.mix(episode &+ 0xD1B5_4A32_D192_ED03))
    }

    /// A stream from a raw 64-bit state.
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return RandomSource.mix(state)
    }

    /// A uniform value in `range` (53 bits of precision).
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        let unit = Double(next() >> 11) * 0x1.0p-53
        return range.lowerBound + (range.upperBound - range.lowerBound) * unit
    }

    /// The episode seed reported in episode events: a function of the same three numbers.
    public static func episodeSeed(seed: UInt64, env: Int, episode: UInt64) -> UInt64 {
        var r = RandomSource(seed: seed, env: env, episode: episode)
        return r.next()
    }

    @inlinable static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
