import Foundation
import Logging
import Messaging
import SimEngine
import Synchronization

/// The open same-host step channels (`/sim/open_channel`): a sealed memory file and a thread per
/// channel, one channel per lease, at most `WireLimits.maxChannels`. A channel's thread waits for
/// its client's requests, reads each request from the shared memory once into its own buffers,
/// checks it (lease, op, autoreset, actions) and has the step loop serve it with the world to
/// itself. It closes when its lease ends (released or expired), when the server stops, or on a
/// request the lease no longer allows.
final class StepChannels: Sendable {
    private struct Table {
        var threads: [String: ChannelThread] = [:]
        /// Set by `closeAll`: the server is stopping and opens no more channels.
        var closed = false
    }

    private let table = Mutex(Table())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Opens a channel for `lease` (already authorized for `ids`) and starts its thread.
    func open(lease: String, ids: [Int], loop: StepLoop, leases: LeaseTable, rewards: LeaseRewards, world: World) throws(ServiceError)
        -> Robosim_OpenChannelResponse {
        let layout = StepChannel.Layout(envs: ids.count, observationSize: world.observationSize, actionSize: world.actionSize)
        let nonce = UInt64.random(in: 1...UInt64.max)
        let thread: ChannelThread = try table.withLock { (t) throws(ServiceError) -> ChannelThread in
            guard !t.closed else { throw .unavailable("the server is shutting down") }
            t.threads = t.threads.filter { !$0.value.finished.load(ordering: .acquiring) }
            guard t.threads[lease] == nil else { throw .failedPrecondition("lease '\(Names.quoted(lease))' already has a step channel") }
            guard t.threads.count < WireLimits.maxChannels else {
                throw ServiceError(.resourceExhausted, "\(WireLimits.maxChannels) step channels are open, the server's limit: release a lease first")
            }
            let channel: StepChannel
            do {
                channel = try StepChannel.create(layout: layout, nonce: nonce)
            } catch {
                throw .unavailable("no step channel: \(error)")
            }
            let thread = ChannelThread(lease: lease, ids: ids, channel: channel, loop: loop, leases: leases, rewards: rewards,
                                       contract: world.actions, logger: logger)
            t.threads[lease] = thread
            return thread
        }
        thread.start()
        var r = Robosim_OpenChannelResponse()
        r.path = thread.channel.path
        r.nonce = nonce
        r.envIds = ids.map(UInt32.init)
        r.observationSize = UInt32(layout.observationSize)
        r.actionSize = UInt32(layout.actionSize)
        r.actions = UInt64(layout.actions)
        r.observations = UInt64(layout.observations)
        r.rewards = UInt64(layout.rewards)
        r.finalObservations = UInt64(layout.finalObservations)
        r.terminated = UInt64(layout.terminated)
        r.truncated = UInt64(layout.truncated)
        r.success = UInt64(layout.success)
        r.final = UInt64(layout.final)
        r.byteCount = UInt64(layout.byteCount)
        return r
    }

    /// Channels now serving (tests).
    var count: Int { table.withLock { $0.threads.values.filter { !$0.finished.load(ordering: .acquiring) }.count } }

    /// Closes every channel (clients waiting get `UNAVAILABLE`), waits for their threads, and opens
    /// no more.
    func closeAll() {
        let threads = table.withLock { t in
            t.closed = true
            defer { t.threads.removeAll() }
            return Array(t.threads.values)
        }
        for t in threads { t.requestStop() }
        for t in threads { t.join() }
    }
}

/// One channel's thread.
final class ChannelThread: @unchecked Sendable {
    // Invariant: `actions` is used by the thread only (after `start`).
    let lease: String
    let ids: [Int]
    let channel: StepChannel
    private let loop: StepLoop
    private let leases: LeaseTable
    private let rewards: LeaseRewards
    private let contract: ActionContract
    private let logger: Logger
    /// The request's actions, copied out of the shared memory once, then checked and used.
    private var actions: [Double]
    private let stopRequested = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(lease: String, ids: [Int], channel: StepChannel, loop: StepLoop, leases: LeaseTable, rewards: LeaseRewards, contract: ActionContract,
         logger: Logger) {
        self.lease = lease
        self.rewards = rewards
        self.ids = ids
        self.channel = channel
        self.loop = loop
        self.leases = leases
        self.contract = contract
        self.logger = logger
        actions = [Double](repeating: 0, count: ids.count * channel.layout.actionSize)
    }

    func start() {
        let thread = Thread { [self] in
            let reason = serve()
            channel.close(reason: reason)
            logger.debug("step channel closed", metadata: ["sim.lease": "\(lease)", "sim.reason": "\(reason)"])
            finished.store(true, ordering: .releasing)
            done.signal()
        }
        thread.name = "robosim.channel"
        thread.start()
    }

    /// Asks the thread to end after the request it is serving, if any.
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        channel.wakeServer()
    }

    /// Waits until the thread has ended.
    func join() {
        done.wait()
        done.signal()
    }

    /// Answers requests until the channel must close; returns why.
    private func serve() -> String {
        var seen: UInt32 = 0
        while true {
            if stopRequested.load(ordering: .acquiring) { return "the server is shutting down" }
            // Spin briefly: in a training loop the next request follows the answer within microseconds.
            guard let number = channel.nextRequest(after: seen, spin: .microseconds(50), timeout: .milliseconds(100)) else {
                if !leases.isLive(lease) { return "lease '\(Names.quoted(lease))' ended" }
                continue
            }
            seen = number
            let started = ContinuousClock.now
            do throws(ServiceError) {
                try handle()
                let (seconds, attoseconds) = (ContinuousClock.now - started).components
                channel.serverNanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
                channel.answer(number)
            } catch {
                channel.answer(number, error: error)
                if error.code == .failedPrecondition || error.code == .unavailable { return error.message }
            }
        }
    }

    /// One request. Every field is read from the shared memory once, before it is checked: the
    /// client cannot change what was checked before it is used.
    private func handle() throws(ServiceError) {
        _ = try leases.authorize(lease: lease, ids: ids)  // the lease is still ours; refreshes it
        let raw = channel.load(StepChannel.Header.op)
        guard let op = StepChannel.Op(rawValue: raw) else {
            throw .invalidArgument("op \(raw): expected \(StepChannel.Op.step.rawValue) (step) or \(StepChannel.Op.reset.rawValue) (reset)")
        }
        let request: StepLoop.ChannelRequest
        switch op {
        case .step:
            let autoreset = channel.load(StepChannel.Header.autoreset)
            guard autoreset <= 1 else { throw .invalidArgument("autoreset \(autoreset): expected 0 (same step) or 1 (next step)") }
            _ = actions.withUnsafeMutableBufferPointer { $0.update(fromContentsOf: channel.actions) }
            let size = channel.layout.actionSize
            for (k, id) in ids.enumerated() {
                if let why = contract.violation(actions[(k * size)..<((k + 1) * size)]) { throw .invalidArgument("env \(id): \(why)") }
            }
            request = .step(autoreset: autoreset == 1 ? .nextStep : .sameStep, reward: rewards.reward(for: lease, leases: leases))
        case .reset:
            request = .reset(seed: channel.load(StepChannel.Header.hasSeed) != 0 ? channel.seed : nil)
        }
        if let error = loop.serve(request, ids: ids, actions: actions, into: channel) { throw error }
    }
}
