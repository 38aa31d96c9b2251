import CMuJoCo
import Foundation
import Messaging
import SwiftProtobuf

/// The scene's cameras for every env: decides on the step loop which frames are due, hands state
/// snapshots to render threads, and publishes `/env_i/camera/<cam>/image_raw`, `depth` and
/// `camera_info`. Also renders pixel observations synchronously for `/sim/step` and `/sim/reset`.
///
/// Latest wins: each (env, camera) holds at most one waiting snapshot; a newer one replaces it
/// (counted as skipped), so slow rendering or a slow subscriber lowers the frame rate and never
/// stalls physics. A frame of an episode that has since been reset is dropped, never published:
/// after a reset, every published frame shows the new episode. Each topic's frames go out in
/// order of their stamps (render threads may finish out of order: a frame older than one already
/// published is dropped too). Pixel observations go before waiting topic frames.
final class CameraPipeline: @unchecked Sendable {
    // Invariant: `lastBucket`, `wanted*`, `knownEpoch` are used by the step loop thread only; the
    // rest of the mutable state is guarded by `condition`. Workers are created on their threads.

    let cameras: [CameraSpec]
    let backend: RenderBackend
    let backendDescription: String

    typealias Statistics = CameraStatistics

    private struct Topics {
        let image: Publisher<SensorMsgs_Image>?
        let depth: Publisher<SensorMsgs_Image>?
        let info: Publisher<SensorMsgs_CameraInfo>
    }

    /// A synchronous request: frames for (snapshot, camera) pairs, filled in by the workers.
    private final class Batch: @unchecked Sendable {
        // Invariant: guarded by the pipeline's `condition`.
        let items: [(snapshot: StateSnapshot, camera: Int)]
        var next = 0
        var remaining: Int
        var results: [Result<RenderedFrame, RenderError>?]
        init(_ items: [(snapshot: StateSnapshot, camera: Int)]) {
            self.items = items
            remaining = items.count
            results = Array(repeating: nil, count: items.count)
        }
    }

    private let model: MuJoCoModel
    private let hub: Hub
    private let controlDt: Double
    private let flags: Int32
    private let topics: [[Topics]]
    private let condition = NSCondition()
    private var pending: [Int: StateSnapshot] = [:]
    private var queue: [Int] = []
    private var queueHead = 0
    private var batches: [Batch] = []
    private var epochs: [UInt64]
    /// Per (env, camera): the episode count and stamp of the last published frame.
    private var lastPublished: [(epoch: UInt64, stamp: Double)]
    private var running = true
    private var stats = Statistics()
    private var threads: [Thread] = []
    private var startedWorkers = 0
    private var startError: RenderError?

    private var lastBucket: [Int]
    private var wanted: [Bool]
    private var wantedGeneration = UInt64.max
    private var knownEpoch: [UInt64]

    /// Prepares the model's offscreen buffer for the largest camera, advertises the topics and
    /// starts `threads` render threads, each with its own GL context. Throws when a context cannot
    /// be made (the first error).
    init(cameras: [CameraSpec], world: World, node: Node, hub: Hub, backend: RenderBackend, description: String,
         settings: Scene.RenderSettings, threads threadCount: Int) throws {
        self.cameras = cameras
        self.backend = backend
        backendDescription = description
        model = world.model
        self.hub = hub
        controlDt = world.configuration.controlDt
        var f: Int32 = 0
        if settings.shadows ?? false { f |= Int32(ROBOSIM_RENDER_SHADOWS) }
        if settings.reflections ?? false { f |= Int32(ROBOSIM_RENDER_REFLECTIONS) }
        if settings.skybox ?? true { f |= Int32(ROBOSIM_RENDER_SKYBOX) }
        flags = f
        // Rendering reads only the visual settings; physics never does, so the shared model may change here.
        let m = world.model.pointer
        m.pointee.vis.global.offwidth = Int32(max(Int(m.pointee.vis.global.offwidth), cameras.map(\.width).max() ?? 1))
        m.pointee.vis.global.offheight = Int32(max(Int(m.pointee.vis.global.offheight), cameras.map(\.height).max() ?? 1))
        m.pointee.vis.quality.offsamples = Int32(settings.multisamples ?? 0)
        topics = try (0..<world.envs.count).map { i in
            try cameras.map { c in
                let ns = "\(Names.env(i))/camera/\(c.name)"
                return Topics(image: c.rgb ? try node.advertise("\(ns)/image_raw", qos: .sensor) : nil,
                              depth: c.depth ? try node.advertise("\(ns)/depth", qos: .sensor) : nil,
                              info: try node.advertise("\(ns)/camera_info", qos: .sensor))
            }
        }
        let slots = world.envs.count * cameras.count
        lastBucket = Array(repeating: -1, count: slots)
        wanted = Array(repeating: false, count: slots)
        epochs = world.envs.map(\.episodeStarts)
        knownEpoch = epochs
        lastPublished = Array(repeating: (0, -.infinity), count: slots)
        for k in 0..<max(1, threadCount) {
            let thread = Thread { [self] in work() }
            thread.name = "robosim.render.\(k)"
            thread.stackSize = 4 << 20
            threads.append(thread)
        }
        for t in threads { t.start() }
        condition.lock()
        while startedWorkers < threads.count && startError == nil { condition.wait() }
        let failure = startError
        condition.unlock()
        if let failure {
            stop()
            throw failure
        }
    }

    var statistics: Statistics { condition.lock(); defer { condition.unlock() }; return stats }

    /// Stops the render threads after the frame each is drawing; waiting frames are dropped and
    /// waiting batches fail.
    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        while startedWorkers > 0 { condition.wait() }
        condition.unlock()
    }

    // MARK: Step loop side

    private func refreshWanted() {
        let generation = hub.subscriptionGeneration
        guard generation != wantedGeneration else { return }
        let prefixes = hub.subscriptionSnapshot
        func has(_ topic: String?) -> Bool { topic.map { t in prefixes.contains { t.hasPrefix($0) } } ?? false }
        for (i, envTopics) in topics.enumerated() {
            for (c, t) in envTopics.enumerated() {
                wanted[i * cameras.count + c] = has(t.image?.topic) || has(t.depth?.topic) || has(t.info.topic)
            }
        }
        wantedGeneration = generation
    }

    /// After a batch (or a reset) of `ids`: notes new episodes, and queues a snapshot of each env
    /// whose camera is due and has a subscriber. Due: the camera's rate ticks over in the env's
    /// episode time, and at every episode start.
    func capture(world: World, ids: [Int], simTime: Double) {
        refreshWanted()
        let n = cameras.count
        var newEpochs: [(Int, UInt64)] = []
        for i in ids where world.envs[i].episodeStarts != knownEpoch[i] {
            knownEpoch[i] = world.envs[i].episodeStarts
            newEpochs.append((i, knownEpoch[i]))
            for c in 0..<n { lastBucket[i * n + c] = -1 }
        }
        var due: [(slot: Int, snapshot: StateSnapshot)] = []
        for i in ids {
            var snapshot: StateSnapshot?
            let env = world.envs[i]
            for c in 0..<n where wanted[i * n + c] {
                let bucket = Int((Double(env.steps) * controlDt * cameras[c].rateHz + 1e-9).rounded(.down))
                guard bucket != lastBucket[i * n + c] else { continue }
                lastBucket[i * n + c] = bucket
                if snapshot == nil {
                    snapshot = StateSnapshot(env: i, epoch: env.episodeStarts, stamp: simTime, model: model.pointer, data: env.data)
                }
                due.append((i * n + c, snapshot!))
            }
        }
        guard !newEpochs.isEmpty || !due.isEmpty else { return }
        condition.lock()
        for (i, epoch) in newEpochs { epochs[i] = epoch }
        for (slot, snapshot) in due {
            if pending.updateValue(snapshot, forKey: slot) != nil {
                stats.skipped += 1
            } else {
                queue.append(slot)
            }
        }
        if !due.isEmpty { condition.broadcast() }
        condition.unlock()
    }

    /// Renders `cameras` (indices) of each snapshot (in order; camera-minor) and waits.
    func render(_ snapshots: [StateSnapshot], cameras indices: [Int]) throws(RenderError) -> [SensorMsgs_Image] {
        let items = snapshots.flatMap { s in indices.map { (snapshot: s, camera: $0) } }
        guard !items.isEmpty else { return [] }
        let batch = Batch(items)
        condition.lock()
        guard running else {
            condition.unlock()
            throw RenderError("rendering has stopped")
        }
        batches.append(batch)
        condition.broadcast()
        while batch.remaining > 0 { condition.wait() }
        stats.observationFrames += items.count
        condition.unlock()
        var images: [SensorMsgs_Image] = []
        images.reserveCapacity(items.count * 2)
        for (k, item) in items.enumerated() {
            let frame = try batch.results[k]!.get()
            let camera = cameras[item.camera]
            let stamp = BuiltinInterfaces_Time(seconds: item.snapshot.stamp)
            if let rgb = frame.rgb { images.append(Self.rgbImage(rgb, camera, stamp)) }
            if let depth = frame.depth { images.append(Self.depthImage(depth, camera, stamp)) }
        }
        return images
    }

    // MARK: Render threads

    private enum Work {
        case observation(Batch, Int)
        case topic(Int, StateSnapshot)
    }

    /// Takes the next piece of work, waiting for one; nil when stopping. Call with the lock held.
    private func nextWork() -> Work? {
        while running {
            if let batch = batches.first {
                let k = batch.next
                batch.next += 1
                if batch.next == batch.items.count { batches.removeFirst() }
                return .observation(batch, k)
            }
            if queueHead < queue.count {
                let slot = queue[queueHead]
                queueHead += 1
                if queueHead > 1024, queueHead * 2 > queue.count {
                    queue.removeFirst(queueHead)
                    queueHead = 0
                }
                if let snapshot = pending.removeValue(forKey: slot) { return .topic(slot, snapshot) }
                continue
            }
            condition.wait()
        }
        return nil
    }

    private func work() {
        let worker: RenderWorker
        do {
            worker = try RenderWorker(model: model, flags: flags)
        } catch {
            condition.lock()
            startError = startError ?? error
            condition.broadcast()
            condition.unlock()
            return
        }
        condition.lock()
        startedWorkers += 1
        condition.broadcast()
        while let item = nextWork() {
            condition.unlock()
            let started = DispatchTime.now().uptimeNanoseconds
            switch item {
            case .observation(let batch, let k):
                let (snapshot, camera) = batch.items[k]
                let result = Result { () throws(RenderError) in try worker.render(snapshot, camera: cameras[camera]) }
                condition.lock()
                batch.results[k] = result
                batch.remaining -= 1
                if batch.remaining == 0 { condition.broadcast() }
            case .topic(let slot, let snapshot):
                let camera = cameras[slot % cameras.count]
                // Rendered and serialized outside the lock; only the checks and the (non-blocking) sends inside.
                let payloads = Result { () throws in
                    try Self.payloads(try worker.render(snapshot, camera: camera), camera, stamp: BuiltinInterfaces_Time(seconds: snapshot.stamp))
                }
                condition.lock()
                switch payloads {
                case .success(let p) where epochs[snapshot.env] == snapshot.epoch
                    && (snapshot.epoch > lastPublished[slot].epoch || snapshot.stamp > lastPublished[slot].stamp):
                    // Sent under the lock: a reset that lands now waits until this frame is out.
                    let t = topics[snapshot.env][slot % cameras.count]
                    if let image = p.image { t.image?.raw.publish(serialized: image) }
                    if let depth = p.depth { t.depth?.raw.publish(serialized: depth) }
                    t.info.raw.publish(serialized: p.info)
                    lastPublished[slot] = (snapshot.epoch, snapshot.stamp)
                    stats.published += 1
                case .success:
                    stats.stale += 1
                case .failure:
                    stats.failed += 1
                }
            }
            stats.renderSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        }
        // Stopping: fail what is left of the batches so no caller waits forever.
        for batch in batches {
            for k in batch.next..<batch.items.count { batch.results[k] = .failure(RenderError("rendering has stopped")) }
            batch.remaining -= batch.items.count - batch.next
            batch.next = batch.items.count
        }
        batches.removeAll()
        startedWorkers -= 1
        condition.broadcast()
        condition.unlock()
        withExtendedLifetime(worker) {}
    }

    // MARK: Messages

    /// The serialized image_raw, depth and camera_info messages of a frame.
    private static func payloads(_ frame: RenderedFrame, _ camera: CameraSpec, stamp: BuiltinInterfaces_Time) throws
        -> (image: [UInt8]?, depth: [UInt8]?, info: [UInt8]) {
        (try frame.rgb.map { try rgbImage($0, camera, stamp).serializedBytes() },
         try frame.depth.map { try depthImage($0, camera, stamp).serializedBytes() },
         try camera.cameraInfo(stamp: stamp).serializedBytes())
    }

    static func rgbImage(_ rgb: [UInt8], _ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_Image {
        var m = SensorMsgs_Image()
        m.header.stamp = stamp
        m.header.frameID = camera.frameID
        m.width = UInt32(camera.width)
        m.height = UInt32(camera.height)
        m.encoding = "rgb8"
        m.step = UInt32(3 * camera.width)
        m.data = Data(rgb)
        return m
    }

    static func depthImage(_ depth: [Float], _ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_Image {
        var m = SensorMsgs_Image()
        m.header.stamp = stamp
        m.header.frameID = camera.frameID
        m.width = UInt32(camera.width)
        m.height = UInt32(camera.height)
        m.encoding = "32FC1"
        m.isBigendian = 0   // little-endian IEEE floats (every platform Swift runs the server on)
        m.step = UInt32(4 * camera.width)
        m.data = depth.withUnsafeBytes { Data($0) }
        return m
    }
}

/// Frame counters of a server's cameras since it started.
public struct CameraStatistics: Sendable, Equatable {
    /// Frames published on the camera topics.
    public var published = 0
    /// Waiting snapshots replaced by newer ones (latest wins: rendering fell behind).
    public var skipped = 0
    /// Frames dropped because their episode was reset while they rendered, or a newer frame of the
    /// same camera was already out.
    public var stale = 0
    public var failed = 0
    /// Frames rendered for pixel observations (`/sim/step`, `/sim/reset`).
    public var observationFrames = 0
    /// Time the render threads spent rendering, summed over threads.
    public var renderSeconds = 0.0
}
