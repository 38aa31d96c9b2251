import Foundation
import Synchronization

/// Watches a server's instance id (`/sim/describe`'s `instance_id`, new each time the server process
/// starts), by which `StrategistRun` tells a restarted server from the one before whatever its clock
/// says: a background thread reads it every `interval` seconds of wall time and keeps the latest.
///
/// `identify` blocks (a service call with a short timeout), so it runs on a thread of its own, never
/// on the cooperative pool; reads that fail (a server down or restarting) are ignored.
final class InstanceWatch: Sendable {
    /// An id read from the server, and the read's number in the order reads started (1, 2, ...).
    struct Reading: Equatable, Sendable {
        let id: String
        let number: Int
    }

    /// What the loop makes of the ids it sees: the id of the server it acts on. Owned by the loop (a
    /// value, no locking).
    struct Tracker: Sendable {
        enum Verdict: Equatable, Sendable {
            /// The same server (or a restart already counted).
            case same
            /// A restart: the server the run acted on (`was`) is gone; `now` is the new one's id, nil
            /// when it could not be read (the next id read is then adopted without counting again).
            case restarted(was: String, now: String?)
        }

        /// The id of the server the run acts on; nil after a restart whose new id could not be read.
        private(set) var known: String?
        /// The number of the last read the loop made itself: the watch's readings that started
        /// before it may be older news than what the loop knows, and are ignored.
        private(set) var decidedAt = 0

        init(known: String) { self.known = known }

        /// One tick's verdict. `seen` is the watch's latest reading (nil: none yet); `hint` is the id
        /// read at once because the clock went back (a hint, never proof; its `id` nil when it could
        /// not be read), nil when it did not. A restart is counted once, whichever notices it first.
        mutating func check(seen: Reading?, hint: (id: String?, number: Int)?) -> Verdict {
            if let seen, seen.number > decidedAt, case .restarted(let was, let now)? = adopt(seen.id) {
                return .restarted(was: was, now: now)
            }
            guard let now = hint else { return .same }
            decidedAt = max(decidedAt, now.number)
            if let id = now.id { return adopt(id) ?? .same }
            // The clock went back and the server does not answer (it is flapping): a restart, unless
            // one was already counted and its id is still unknown.
            guard let was = known else { return .same }
            known = nil
            return .restarted(was: was, now: nil)
        }

        /// `id` read from the server: nil when it is the known one; `.same` when it becomes known
        /// after a restart already counted; else a restart.
        private mutating func adopt(_ id: String) -> Verdict? {
            guard id != known else { return nil }
            guard let was = known else {
                known = id
                return .same
            }
            known = id
            return .restarted(was: was, now: id)
        }
    }

    private struct State {
        var started = 0
        var latest: Reading?
    }

    private let identify: @Sendable () throws -> String
    private let interval: Double
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    /// Signalled by `stop()`, so that the thread does not sleep out its interval.
    private let wake = DispatchSemaphore(value: 0)

    /// `identify` returns the server's instance id or throws (called from the watch's thread and,
    /// through `read()`, from the caller's); `interval` is the wall time between reads (seconds).
    init(identify: @escaping @Sendable () throws -> String, interval: Double = 0.5) {
        self.identify = identify
        self.interval = interval
    }

    /// The latest id read by the watch's thread (nil before the first successful read).
    var latest: Reading? { state.withLock { $0.latest } }

    /// Reads the id now, on the calling thread (blocks up to `identify`'s timeout): the id (nil when
    /// the read failed or the server sent none) and the read's number.
    func read() -> (id: String?, number: Int) {
        let number = state.withLock { s in
            s.started += 1
            return s.started
        }
        guard let id = try? identify(), !id.isEmpty else { return (nil, number) }
        return (id, number)
    }

    /// Starts the thread (once).
    func start() {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let now = read()
                if let id = now.id { state.withLock { $0.latest = Reading(id: id, number: now.number) } }
                if wake.wait(timeout: .now() + interval) == .success { break }
            }
        }
        thread.name = "strategist.instance-watch"
        thread.start()
    }

    /// Ends the thread after its read in progress, if any (does not wait for it).
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
    }
}
