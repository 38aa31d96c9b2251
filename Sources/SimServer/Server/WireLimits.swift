import Messaging
import SimEngine

/// Bounds of the values clients send, checked before anything is queued (CONTRACT.md, "Limits"): a
/// request that asks too much gets `INVALID_ARGUMENT` or `RESOURCE_EXHAUSTED` naming the limit,
/// and the server's memory stays bounded whatever arrives.
enum WireLimits {
    /// Bytes of a lease's client name.
    static let clientNameBytes = 128
    /// Longest lease time to live, seconds (a day).
    static let maxTTL = 86_400.0
    /// Calls waiting for the step loop (step, reset, render, set_parameters), all clients together.
    static let maxQueuedCalls = 1024
    /// Names in `/sim/get_parameters`, parameters in `/sim/set_parameters`.
    static let maxParameters = 256
    /// Bytes of one parameter value.
    static let parameterValueBytes = 1024
    /// Real-time factor: 0 (as fast as possible) or within these bounds.
    static let realTimeFactor = 1e-3...1e3
    /// Reset range bounds (joint positions, offsets): magnitudes up to this.
    static let resetMagnitude = 1e6
    /// Step channels open at once (each holds a thread and a shared-memory file).
    static let maxChannels = 32
    /// Image bytes one reply may carry (rgb8 and 32FC1 together).
    static let replyImageBytes = 256 << 20

    /// Seed indices of a seeded reset (`ResetRequest.seed_indices`): one per env, each below 2^32.
    static func seedIndices(_ indices: [UInt64], envs: Int, seeded: Bool) throws(ServiceError) -> [Int]? {
        guard !indices.isEmpty else { return nil }
        guard seeded else { throw .invalidArgument("seed_indices need a seed") }
        guard indices.count == envs else {
            throw .invalidArgument("expected \(envs) seed_indices (one per env), got \(indices.count)")
        }
        if let big = indices.first(where: { $0 > UInt64(UInt32.max) }) {
            throw .invalidArgument("seed index \(big) exceeds \(UInt32.max)")
        }
        return indices.map { Int($0) }
    }

    /// Starting episode numbers of a seeded reset (`ResetRequest.episodes`): one per env, each below 2^32.
    static func episodes(_ episodes: [UInt64], envs: Int, seeded: Bool) throws(ServiceError) -> [UInt64]? {
        guard !episodes.isEmpty else { return nil }
        guard seeded else { throw .invalidArgument("episodes need a seed") }
        guard episodes.count == envs else {
            throw .invalidArgument("expected \(envs) episodes (one per env), got \(episodes.count)")
        }
        if let big = episodes.first(where: { $0 > UInt64(UInt32.max) }) {
            throw .invalidArgument("episode \(big) exceeds \(UInt32.max)")
        }
        return episodes
    }

    static func checkClientName(_ name: String) throws(ServiceError) {
        guard name.utf8.count <= clientNameBytes else {
            throw .invalidArgument("client_name has \(name.utf8.count) bytes; the limit is \(clientNameBytes)")
        }
    }

    static func checkTTL(_ ttl: Double) throws(ServiceError) {
        guard ttl.isFinite, ttl >= 0, ttl <= maxTTL else {
            throw .invalidArgument("ttl_s must be a number in [0, \(Int(maxTTL))] seconds (0: the default \(Int(LeaseTable.defaultTTL)) s), got \(ttl)")
        }
    }

    /// Image bytes of `renders` states (envs, final states) drawn by `cameras`.
    static func checkImageBytes(renders: Int, cameras: [CameraSpec]) throws(ServiceError) {
        let perState = cameras.reduce(0) { $0 + $1.width * $1.height * ((($1.rgb ? 3 : 0)) + ($1.depth ? 4 : 0)) }
        let total = renders.multipliedReportingOverflow(by: perState)
        guard !total.overflow, total.partialValue <= replyImageBytes else {
            throw ServiceError(.resourceExhausted, "the reply would carry \(renders) x \(perState) image bytes; the limit is \(replyImageBytes >> 20) MiB per call: render fewer envs or cameras per call")
        }
    }
}
