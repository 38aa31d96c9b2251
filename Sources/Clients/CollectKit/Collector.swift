import ClientKit
import Foundation
import Messaging
import Synchronization

/// Records episodes from a lockstep server: leases its envs, steps them all together through
/// `/sim/step` (with every camera rendered synchronously, so an image never lags its state),
/// asks the policy for each env's command, and hands each finished episode to a writer thread
/// (video encoding and Parquet), so stepping goes on while episodes are written.
///
/// Frames: one per `--fps` tick. With fps below the control rate, a frame's command is held for
/// `controlRate / fps` control steps (which must be a whole number); `next.reward` sums them and
/// `next.done` / `next.success` report any. An env whose episode ends mid-frame sits out the rest
/// of that frame's steps.
///
/// A server restart (see `VectorEnv+Recovery.swift`): the episodes in flight are dropped (never
/// written) and recorded again from their start, with the same episode index and seed, so the run
/// still writes the episodes asked for; finished episodes are already written or queued.
public final class Collector {
    public struct Options: Sendable {
        public var episodes = 10
        public var fps: Double?
        public var onlySuccess = false
        public var seed: UInt64 = 0
        public var task = ""
        public var clientName = "sim-collect"
        /// Finished episodes waiting for the writer before stepping pauses.
        public var writeQueue = 16
        /// Seconds to wait for a restarted server (0: fail at once).
        public var reconnectTimeout = 60.0
        public init() {}
    }

    /// What the collector has done so far (for the progress line).
    public struct Progress: Sendable {
        public var written = 0
        public var successes = 0
        public var discarded = 0
        public var frames = 0
        public var seconds = 0.0
        /// Episodes in flight lost to server restarts (recorded again); the reconnections, and those
        /// that found a new server process (the others: a lease lost on the same one).
        public var lost = 0
        public var reconnects = 0
        public var restarts = 0
    }

    let client: ServiceClient
    let describe: Robosim_DescribeResponse
    let options: Options
    let writer: LeRobotWriter
    var policy: any Policy
    /// Cameras recorded (rgb ones, in describe's order) and which image of a render reply is each.
    let cameras: [Robosim_CameraDescription]
    let stepsPerFrame: Int
    private let stopRequested = Atomic<Bool>(false)

    public init(client: ServiceClient, describe: Robosim_DescribeResponse, options: Options, writer: LeRobotWriter, policy: any Policy) throws {
        self.client = client
        self.describe = describe
        self.options = options
        self.writer = writer
        self.policy = policy
        cameras = Self.recordedCameras(describe)
        stepsPerFrame = try Self.stepsPerFrame(describe: describe, fps: options.fps)
    }

    /// Control steps per recorded frame at `fps` (nil: the control rate); throws when fps does not divide it.
    public static func stepsPerFrame(describe: Robosim_DescribeResponse, fps: Double?) throws -> Int {
        let controlRate = 1 / (describe.physicsDt * Double(describe.decimation))
        let fps = fps ?? controlRate
        let k = (controlRate / fps).rounded()
        guard k >= 1, abs(controlRate / k - fps) < 1e-6 * fps else {
            throw DatasetError(String(format: "--fps %g must divide the control rate %g Hz (e.g. %g or %g)", fps, controlRate, controlRate, controlRate / 2))
        }
        return Int(k)
    }

    /// The cameras recorded: every rgb camera, when the server renders at all.
    static func recordedCameras(_ d: Robosim_DescribeResponse) -> [Robosim_CameraDescription] {
        d.renderBackend == "none" ? [] : d.cameras.filter(\.rgb)
    }

    /// The dataset's spec for a server (its cameras and sizes) and policy.
    public static func spec(describe d: Robosim_DescribeResponse, policy: any Policy, format: DatasetSpec.Format, fps: Double?,
                            codec: VideoEncoder.Codec) -> DatasetSpec {
        let controlRate = 1 / (d.physicsDt * Double(d.decimation))
        return DatasetSpec(format: format, fps: fps ?? controlRate, robotType: d.scene,
                           stateNames: d.observationNames, environmentStateNames: d.environmentObservationNames,
                           actionNames: policy.actionNames,
                           cameras: recordedCameras(d).map { .init(name: $0.name, width: Int($0.width), height: Int($0.height)) },
                           videoCodec: codec)
    }

    /// Asks the loop to stop after the current frame; finished episodes are still written.
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    /// Runs until `episodes` episodes are written (or a stop is requested). `progress` is called
    /// after every frame and every written episode, on the calling thread or the writer's.
    public func run(progress: @escaping @Sendable (Progress) -> Void) throws -> Progress {
        let start = Date()
        let vector = try VectorEnv(client: client, options: .init(clientName: options.clientName, ttl: 60, reconnectTimeout: options.reconnectTimeout))
        defer { vector.close() }
        let ids = vector.envIDs
        let n = vector.count
        let obsSize = vector.observationSize
        let cameraNames = cameras.map(\.name)
        let layout = vector.imageLayout(cameras: cameraNames)
        func rgbImages(_ images: [SensorMsgs_Image], env k: Int) -> [[UInt8]] {
            cameraNames.map { [UInt8](layout.images(images, env: k, camera: $0).rgb?.data ?? Data()) }
        }

        let first = try vector.reset(seed: options.seed, render: !cameraNames.isEmpty, cameras: cameraNames)
        var observations = first.observations
        var images = (0..<n).map { rgbImages(first.images, env: $0) }
        var envEpisodes = [Int](repeating: 0, count: n)
        var buffers = (0..<n).map { RecordedEpisode(cameras: cameraNames.count, task: options.task, env: Int(ids[$0]), envEpisode: 0) }
        var steps = [Int](repeating: 0, count: n)
        for k in 0..<n { policy.reset(env: k) }
        let controlDt = describe.physicsDt * Double(describe.decimation)

        let queue = WriterQueue(writer: writer, capacity: options.writeQueue)
        var state = Progress()
        var queued = 0
        defer { queue.finish() }
        while queued < options.episodes && !stopRequested.load(ordering: .relaxed) {
            if let failure = queue.failure { throw failure }
            // One frame: the policy's command, held for stepsPerFrame control steps.
            var commands: [[Double]] = []
            for k in 0..<n {
                // Sent as recorded: the dataset stores actions as float32, so the server gets exactly
                // those values and `sim-collect replay` can send them again bit for bit.
                let command = policy.act(env: k, observation: observations[(k * obsSize)..<((k + 1) * obsSize)], time: Double(steps[k]) * controlDt)
                commands.append(command.map { Double(Float($0)) })
            }
            // What the policy saw: the frame's observation and images.
            let frameState = (0..<n).map { Array(observations[($0 * obsSize)..<(($0 + 1) * obsSize)]) }
            let frameImages = images
            var reward = [Double](repeating: 0, count: n), done = [Bool](repeating: false, count: n), success = done
            var active = Array(0..<n)
            var unrendered: [Int] = []   // envs that ended before the frame's last step: drawn afterwards
            var restarted: Set<Int> = []  // envs whose server restarted in this frame: their episode starts over
            for sub in 0..<stepsPerFrame where !active.isEmpty {
                // Images are needed at frame boundaries only: the last step of the frame renders.
                let render = !cameraNames.isEmpty && sub == stepsPerFrame - 1
                let command = active.flatMap { commands[$0] }, names = render ? cameraNames : []
                let reply = policy.output == .endEffector
                    ? try vector.step(endEffectorTargets: command, positions: active, render: render, cameras: names)
                    : try vector.step(actions: command, positions: active, render: render, cameras: names)
                if !reply.restartedPositions.isEmpty {
                    // Not stepped: every env of the call is back at the start of its episode in flight.
                    for (j, k) in active.enumerated() {
                        for d in 0..<obsSize { observations[k * obsSize + d] = reply.observations[j * obsSize + d] }
                        if render { images[k] = rgbImages(reply.images, env: j) } else if !cameraNames.isEmpty { unrendered.append(k) }
                        restarted.insert(k)
                    }
                    active.removeAll()
                    break
                }
                for (j, k) in active.enumerated() {
                    reward[k] += reply.rewards[j]
                    success[k] = success[k] || (j < reply.success.count && reply.success[j])
                    steps[k] += 1
                    if reply.terminated[j] || reply.truncated[j] { done[k] = true }
                }
                // Each env's state lives in the reply that last stepped it.
                for (j, k) in active.enumerated() {
                    for d in 0..<obsSize { observations[k * obsSize + d] = reply.observations[j * obsSize + d] }
                    if render { images[k] = rgbImages(reply.images, env: j) }
                    if !render, !cameraNames.isEmpty, done[k] { unrendered.append(k) }
                }
                active.removeAll { done[$0] }
            }
            if !unrendered.isEmpty {
                let rendered = try vector.render(positions: unrendered, cameras: cameraNames)
                for (j, k) in unrendered.enumerated() { images[k] = rgbImages(rendered, env: j) }
            }
            for k in 0..<n {
                if restarted.contains(k) {
                    // The episode in flight is lost: record it again (same index, same seed).
                    if steps[k] > 0 { state.lost += 1 }
                    buffers[k] = RecordedEpisode(cameras: cameraNames.count, task: options.task, env: Int(ids[k]), envEpisode: envEpisodes[k])
                    steps[k] = 0
                    policy.reset(env: k)
                    continue
                }
                buffers[k].runSeed = options.seed
                buffers[k].scene = describe.scene
                buffers[k].serverVersion = describe.version
                buffers[k].input = policy.output == .endEffector ? .endEffector : .action
                buffers[k].append(state: frameState[k], action: commands[k], images: frameImages[k], reward: reward[k], done: done[k], success: success[k])
                state.frames += 1
                if done[k] {
                    if options.onlySuccess && !buffers[k].succeeded {
                        state.discarded += 1
                    } else if queued < options.episodes {
                        // A full queue waits for the writer: the lease is renewed meanwhile.
                        queue.push(buffers[k]) { try? vector.renewLease() }
                        queued += 1
                    }
                    envEpisodes[k] += 1
                    buffers[k] = RecordedEpisode(cameras: cameraNames.count, task: options.task, env: Int(ids[k]), envEpisode: envEpisodes[k])
                    steps[k] = 0
                    policy.reset(env: k)
                }
            }
            let written = queue.progress
            state.written = written.written
            state.successes = written.successes
            state.seconds = Date().timeIntervalSince(start)
            state.reconnects = vector.reconnects
            state.restarts = vector.restarts
            progress(state)
        }
        // The last episodes are still being written: keep the progress line moving meanwhile.
        while !queue.finish(within: 0.25) {
            let w = queue.progress
            state.written = w.written
            state.successes = w.successes
            state.seconds = Date().timeIntervalSince(start)
            progress(state)
        }
        // Pack what waits in staging (v3.0); a failed write keeps its episodes sealed for --resume.
        if let failure = queue.failure {
            try? writer.finish()
            throw failure
        }
        try writer.finish()
        let written = queue.progress
        state.written = written.written
        state.successes = written.successes
        state.seconds = Date().timeIntervalSince(start)
        progress(state)
        return state
    }
}

/// Finished episodes waiting to be written, and the thread that writes them in order (video
/// encoding dominates). `push` waits while the queue is full: the collector never holds more than
/// `capacity` unwritten episodes in memory.
final class WriterQueue: @unchecked Sendable {
    // Invariant: every field below `condition` is guarded by it.
    private let writer: LeRobotWriter
    private let capacity: Int
    private let condition = NSCondition()
    private var pending: [RecordedEpisode] = []
    private var closed = false
    private var busy = false
    private var written = 0, successes = 0
    private var error: Error?
    private var thread: Thread?

    init(writer: LeRobotWriter, capacity: Int) {
        self.writer = writer
        self.capacity = max(1, capacity)
        let thread = Thread { [self] in loop() }
        thread.name = "robosim.collect.writer"
        self.thread = thread
        thread.start()
    }

    var progress: (written: Int, successes: Int) { condition.lock(); defer { condition.unlock() }; return (written, successes) }
    var failure: Error? { condition.lock(); defer { condition.unlock() }; return error }

    /// Queues an episode, waiting while the queue is full; `whileWaiting` runs every 5 s of waiting.
    func push(_ episode: RecordedEpisode, whileWaiting: () -> Void = {}) {
        condition.lock()
        while pending.count >= capacity && error == nil {
            if !condition.wait(until: Date().addingTimeInterval(5)) {
                condition.unlock()
                whileWaiting()
                condition.lock()
            }
        }
        if error == nil { pending.append(episode) }
        condition.broadcast()
        condition.unlock()
    }

    /// Writes what is queued, then stops the thread (idempotent).
    func finish() {
        while !finish(within: 3600) {}
    }

    /// Closes the queue and waits up to `seconds` for the queued episodes to be written; true when done.
    func finish(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        closed = true
        condition.broadcast()
        while (!pending.isEmpty || busy) && error == nil {
            if !condition.wait(until: deadline) { return !(!pending.isEmpty || busy) || error != nil }
        }
        return true
    }

    private func loop() {
        condition.lock()
        while true {
            while pending.isEmpty && !closed { condition.wait() }
            if pending.isEmpty || error != nil { break }
            let episode = pending.removeFirst()
            busy = true
            condition.broadcast()
            condition.unlock()
            var failed: Error?
            do { try writer.write(episode) } catch { failed = error }
            condition.lock()
            busy = false
            if let failed { error = failed } else {
                written += 1
                if episode.succeeded { successes += 1 }
            }
            condition.broadcast()
        }
        condition.broadcast()
        condition.unlock()
    }
}
