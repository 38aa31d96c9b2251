/// An episode started or ended in one env: what the server publishes on `/env_<i>/episode` and
/// what datasets record per episode. Plain values, produced by the world on the step loop thread.
package struct EpisodeEvent: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case started
        case ended
    }

    package var kind: Kind
    package var env: Int
    /// Episode index within the env's run (restarts at 0 when `/sim/reset` gives a seed).
    package var episode: UInt64
    /// The seed of the episode's randomness, derived from (run seed, env index, episode index).
    package var seed: UInt64
    /// Ended events: whether the task reported success on the last step, the undiscounted return,
    /// and the control steps taken.
    package var success: Bool
    package var episodeReturn: Double
    package var steps: Int
    /// Ended events: `terminated`, `truncated`, `diverged` or `reset`; empty for started events.
    package var reason: String
}
