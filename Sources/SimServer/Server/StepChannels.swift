import Foundation
import Logging
import Messaging
import SimEngine
import Synchronization

/// The open same-host step channels (`/sim/open_channel`): a shared-memory file and a thread per
/// channel, one channel per lease, at most `WireLimits.maxChannels`. A channel's thread waits for
/// its client's requests, checks them (lease, op, actions) and has the step loop serve them with
/// the world to itself. It closes when its lease ends, when the server stops, on a request the lease
/// no longer allows, or when no request came within `attachTimeout` of opening.
final class StepChannels: Sendable {
    /// Where channel files go: `/dev/shm` (memory, not disk) when the system has it.
    let directory: String
    private let open = Mutex<[String: ChannelThread]>([:])
    private let logger: Logger
    /// A channel that has seen no request this long after opening is closed (its client never mapped it).
    static let attachTimeout: Duration = .seconds(10)

    init(logger: Logger) {
        var isDirectory: ObjCBool = false
        directory = FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory) && isDirectory.boolValue
            ? "/dev/shm" : NSTemporaryDirectory()
        self.logger = logger
        Self.removeStale(in: directory)
    }

    /// Channel files of servers that are gone (killed before they could remove them): `robosim-<pid>-*`.
    private static func removeStale(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix("robosim-") {
            let parts = name.split(separator: "-")
            guard parts.count == 3, let pid = Int32(parts[1]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink(directory + "/" + name)
        }
    }

    /// Opens a channel for `lease` (already authorized for `ids`) and starts its thread.
    func open(lease: String, ids: [Int], loop: StepLoop, leases: LeaseTable, world: World) throws(ServiceError) -> Robosim_OpenChannelResponse {
        let layout = StepChannel.Layout(envs: ids.count, observationSize: world.observationSize, actionSize: world.actionSize)
        let nonce = UInt64.random(in: 1...UInt64.max)
        let path = directory + "/robosim-\(getpid())-" + String(nonce, radix: 16)
        let thread: ChannelThread = try open.withLock { (table) throws(ServiceError) -> ChannelThread in
            table = table.filter { !$0.value.finished.load(ordering: .acquiring) }
            guard table[lease] == nil else { throw .failedPrecondition("lease '\(Names.quoted(lease))' already has a step channel") }
            guard table.count < WireLimits.maxChannels else {
                throw ServiceError(.resourceExhausted, "\(WireLimits.maxChannels) step channels are open, the server's limit: release a lease first")
            }
            let channel: StepChannel
            do {
                channel = try StepChannel.create(path: path, layout: layout, nonce: nonce)
            } catch {
                throw .unavailable("no step channel: \(error)")
            }
            let t = ChannelThread(lease: lease, ids: ids, channel: channel, loop: loop, leases: leases, contract: world.actions,
                                  logger: logger)
            table[lease] = t
            return t
        }
        thread.start()
        var r = Robosim_OpenChannelResponse()
        r.path = path
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

    /// Channels now serving (for tests and describe).
    var count: Int { open.withLock { $0.values.filter { !$0.finished.load(ordering: .acquiring) }.count } }

    /// Closes every channel (clients waiting get `UNAVAILABLE`) and waits for their threads.
    func closeAll() {
        let threads = open.withLock { table in defer { table.removeAll() }; return Array(table.values) }
        for t in threads { t.stopRequested.store(true, ordering: .releasing) }
        for t in threads { t.join() }
    }
}

/// One channel's thread.
final class ChannelThread: @unchecked Sendable {
    // Invariant: `channel` and `actions` are used by the thread only (after `start`).
    let lease: String
    let ids: [Int]
    private let channel: StepChannel
    private let loop: StepLoop
    private let leases: LeaseTable
    private let contract: ActionContract
    private let logger: Logger
    private var actions: [Double]
    let stopRequested = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(lease: String, ids: [Int], channel: StepChannel, loop: StepLoop, leases: LeaseTable, contract: ActionContract, logger: Logger) {
        self.lease = lease
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
            channel.unlinkFile()
            logger.debug("step channel closed", metadata: ["sim.lease": "\(lease)", "sim.reason": "\(reason)"])
            finished.store(true, ordering: .releasing)
            done.signal()
        }
        thread.name = "robosim.channel"
        thread.start()
    }

    /// Waits until the thread has ended (after `stopRequested`, within one wait of 100 ms).
    func join() {
        done.wait()
        done.signal()
    }

    /// Answers requests until the channel must close; returns why.
    private func serve() -> String {
        let clock = ContinuousClock()
        let opened = clock.now
        var seen: UInt32 = 0
        var attached = false
        while true {
            if stopRequested.load(ordering: .acquiring) { return "the server is shutting down" }
            // Spin briefly: in a training loop the next request follows the answer within microseconds.
            guard let number = channel.nextRequest(after: seen, spin: .microseconds(50), timeout: .milliseconds(100)) else {
                if !attached, clock.now - opened > StepChannels.attachTimeout { return "no request within \(StepChannels.attachTimeout) of opening" }
                if !leases.isLive(lease) { return "lease '\(Names.quoted(lease))' ended" }
                continue
            }
            seen = number
            if !attached {
                attached = true
                channel.unlinkFile()
            }
            do throws(ServiceError) {
                try handle()
                channel.answer(number)
            } catch {
                channel.answer(number, error: error)
                if error.code == .failedPrecondition || error.code == .unavailable { return error.message }
            }
        }
    }

    private func handle() throws(ServiceError) {
        _ = try leases.authorize(lease: lease, ids: ids)  // the lease is still ours; refreshes it
        let raw = channel.load(StepChannel.Header.op)
        guard let op = StepChannel.Op(rawValue: raw) else {
            throw .invalidArgument("op \(raw): expected \(StepChannel.Op.step.rawValue) (step) or \(StepChannel.Op.reset.rawValue) (reset)")
        }
        if op == .step {
            let autoreset = channel.load(StepChannel.Header.autoreset)
            guard autoreset <= 1 else { throw .invalidArgument("autoreset \(autoreset): expected 0 (same step) or 1 (next step)") }
            let size = channel.layout.actionSize
            let values = channel.actions
            for (k, id) in ids.enumerated() {
                if let why = contract.violation(values[(k * size)..<((k + 1) * size)]) { throw .invalidArgument("env \(id): \(why)") }
            }
        }
        if let error = loop.serve(channel, op: op, ids: ids, actions: &actions) { throw error }
    }
}
