import Logging
import Messaging
import Synchronization

/// The clients that pace a realtime server on sim time (`/pace`, `robosim/msg/Pace`): the step loop
/// does not start a step at or past the smallest `stamp + horizon` of the clients heard within
/// `silence` of wall time. A client that goes silent (killed, cut off, stopped) is dropped after
/// `silence`; one that keeps sending the same stamp holds the server as long as it does (that is
/// pacing; `/sim/pause` gives any client the same power). Bounded: at most `maxPacers` clients,
/// names of at most `maxNameBytes`, horizons in 0.001-60 s; other messages are ignored and counted.
final class PaceBarrier: Sendable {
    static let maxPacers = 64
    static let maxNameBytes = 256
    static let horizonRange = 0.001...60.0

    private struct Pacer {
        var limit: Double
        var heard: ContinuousClock.Instant
    }
    private struct State {
        var pacers: [String: Pacer] = [:]
        var ignored = 0
        var refusalLogged = false
    }
    private let state = Mutex(State())
    private let silence: Duration
    private let logger: Logger

    init(silence: Duration = .seconds(1), logger: Logger) {
        self.silence = silence
        self.logger = logger
    }

    /// Messages ignored so far (invalid, or past `maxPacers`).
    var ignored: Int { state.withLock { $0.ignored } }

    /// Takes one `/pace` message; true when the limit may have moved (wake the loop).
    func receive(_ m: Robosim_Pace, now: ContinuousClock.Instant = .now) -> Bool {
        let name = m.node
        guard !name.isEmpty, name.utf8.count <= Self.maxNameBytes, m.leaving || Self.horizonRange.contains(m.horizonS) else {
            state.withLock { $0.ignored += 1 }
            return false
        }
        let limit = m.stamp.seconds + m.horizonS
        enum Outcome { case updated, joined, left, refused(first: Bool) }
        let outcome = state.withLock { s -> Outcome in
            if m.leaving {
                return s.pacers.removeValue(forKey: name) == nil ? .updated : .left
            }
            if s.pacers[name] != nil {
                s.pacers[name] = Pacer(limit: limit, heard: now)
                return .updated
            }
            guard s.pacers.count < Self.maxPacers else {
                s.ignored += 1
                defer { s.refusalLogged = true }
                return .refused(first: !s.refusalLogged)
            }
            s.pacers[name] = Pacer(limit: limit, heard: now)
            return .joined
        }
        switch outcome {
        case .joined: logger.info("pacing: the step loop now waits for this client's sim time", metadata: ["sim.pacer": "\(name)"])
        case .left: logger.info("pacing: client stopped pacing", metadata: ["sim.pacer": "\(name)"])
        case .refused(let first) where first:
            logger.warning("pacing: \(Self.maxPacers) clients pace already; further ones are not waited for", metadata: ["sim.pacer": "\(name)"])
        default: break
        }
        return true
    }

    /// The sim time the loop may step to (nil: no client paces). Drops clients silent for longer
    /// than `silence`, with a warning.
    func limit(now: ContinuousClock.Instant = .now) -> Double? {
        // Called before every realtime step: no allocation unless a client went silent.
        let (limit, dropped) = state.withLock { s -> (Double?, [String]) in
            guard !s.pacers.isEmpty else { return (nil, []) }
            var limit = Double.infinity
            var silent: [String] = []
            for (name, pacer) in s.pacers {
                if now - pacer.heard > silence { silent.append(name) } else { limit = min(limit, pacer.limit) }
            }
            for name in silent { s.pacers.removeValue(forKey: name) }
            return (s.pacers.isEmpty ? nil : limit, silent)
        }
        for name in dropped {
            logger.warning("pacing: client silent, no longer waited for", metadata: ["sim.pacer": "\(name)", "sim.silence": "\(silence)"])
        }
        return limit
    }
}
