import Synchronization

/// The server's simulation time, from `/clock`, for clients that pace themselves on sim time (ROS's
/// `use_sim_time`). A controller that waits on it ticks at the same sim-time rate whatever the
/// server's real-time factor: at `--rtf 0` it runs as fast as the server does, on a slowed or paused
/// server it waits.
///
/// `wait(until:timeout:)` also returns after `timeout` of wall time, so a loop on a paused server (or
/// one that stopped publishing) still gets to check for signals and report.
public final class SimClock: Sendable {
    private final class State: Sendable {
        struct Waiter {
            let target: Double
            let continuation: CheckedContinuation<Void, Never>
        }
        struct Value {
            var time: Double?
            /// `/clock` messages heard.
            var heard: UInt64 = 0
            var waiters: [UInt64: Waiter] = [:]
            var nextWaiter: UInt64 = 0
            /// Waiters whose timeout came before they started waiting.
            var expired: Set<UInt64> = []
        }
        let value = Mutex(Value())

        /// A new `/clock` time. A time that went back (a restarted server) wakes every waiter, so
        /// that loops re-read the clock instead of waiting for the old time to come round again.
        func advance(to time: Double) {
            let ready = value.withLock { v -> [CheckedContinuation<Void, Never>] in
                let wentBack = v.time.map { time < $0 } ?? false
                v.time = time
                v.heard &+= 1
                let due = v.waiters.filter { wentBack || $0.value.target <= time }
                for key in due.keys { v.waiters.removeValue(forKey: key) }
                return due.values.map(\.continuation)
            }
            for c in ready { c.resume() }
        }

        /// Resumes waiter `id` if it is waiting, else marks it expired (the timeout's path).
        func expire(_ id: UInt64) {
            value.withLock { v -> Waiter? in
                guard let w = v.waiters.removeValue(forKey: id) else {
                    v.expired.insert(id)
                    return nil
                }
                return w
            }?.continuation.resume()
        }
    }

    private let state = State()
    private let subscription: CallbackSubscription

    /// Subscribes to `/clock` on `node`.
    public init(node: Node) throws(Names.Violation) {
        let state = self.state
        subscription = try node.onMessage("/clock", RosgraphMsgs_Clock.self) { state.advance(to: $0.clock.seconds) }
    }

    /// The latest sim time heard (seconds), or nil before the first `/clock` message.
    public var now: Double? { state.value.withLock { $0.time } }

    /// How many `/clock` messages were heard: a server that says the same time again (one waiting
    /// for its pacing clients) is alive.
    public var heard: UInt64 { state.value.withLock { $0.heard } }

    /// Returns once sim time reaches `simTime`, the clock goes back, or `timeout` of wall time passed.
    public func wait(until simTime: Double, timeout: Duration) async {
        let id = state.value.withLock { v -> UInt64 in
            v.nextWaiter &+= 1
            return v.nextWaiter
        }
        let state = self.state
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            state.expire(id)
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.value.withLock { v -> Bool in
                if let t = v.time, t >= simTime { return true }
                if v.expired.remove(id) != nil { return true }
                v.waiters[id] = State.Waiter(target: simTime, continuation: c)
                return false
            }
            if now { c.resume() }
        }
        timer.cancel()
        await timer.value
        _ = state.value.withLock { $0.expired.remove(id) }
    }
}
