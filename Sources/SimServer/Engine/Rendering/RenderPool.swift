import CMuJoCo
import Foundation

/// Render threads for a scene's cameras, each with its own GL context and MuJoCo scene. The step
/// loop hands it snapshots of env states; it never touches an env.
///
/// Two kinds of work, pixel observations first:
/// - `render(_:cameras:)`: frames of (snapshot, camera) pairs, rendered by all threads and
///   returned to the caller, who waits (the images of `/sim/step` and `/sim/reset`);
/// - `submit(_:)`: frames for topics, one waiting snapshot per slot (the caller's numbering,
///   typically env × camera). Latest wins: a newer snapshot of a slot replaces a waiting one
///   (counted as skipped), so slow rendering lowers the frame rate and never stalls physics. Each
///   finished frame goes to `deliver`, on the render thread that drew it.
package final class RenderPool: @unchecked Sendable {
    // Invariant: the mutable state is guarded by `condition`; workers are created on their threads.

    /// Called on a render thread with each topic frame (or why it failed), outside the pool's lock.
    package typealias Deliver = @Sendable (_ slot: Int, _ snapshot: StateSnapshot, _ frame: Result<RenderedFrame, RenderError>) -> Void

    /// Counters since the pool started.
    package struct Statistics: Sendable, Equatable {
        /// Waiting topic snapshots replaced by newer ones (latest wins: rendering fell behind).
        package var skipped = 0
        package var failed = 0
        /// Frames rendered for pixel observations.
        package var observationFrames = 0
        /// Time the render threads spent rendering, summed over threads (seconds).
        package var renderSeconds = 0.0
    }

    package let cameras: [CameraSpec]

    /// A synchronous request: frames for (snapshot, camera) pairs, filled in by the workers.
    private final class Batch: @unchecked Sendable {
        // Invariant: guarded by the pool's `condition`.
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
    private let flags: Int32
    private let cameraOfSlot: @Sendable (Int) -> Int
    private let deliver: Deliver
    private let condition = NSCondition()
    private var pending: [Int: StateSnapshot] = [:]
    private var queue: [Int] = []
    private var queueHead = 0
    private var batches: [Batch] = []
    private var running = true
    private var stats = Statistics()
    private var threads: [Thread] = []
    private var startedWorkers = 0
    private var startError: RenderError?

    /// Prepares the model's offscreen buffer for the largest camera and starts `threads` render
    /// threads. `cameraOfSlot` maps a topic slot to its camera index. Throws when a context cannot
    /// be made (the first error).
    package init(cameras: [CameraSpec], model: MuJoCoModel, settings: Scene.RenderSettings, threads threadCount: Int,
                 cameraOfSlot: @escaping @Sendable (Int) -> Int, deliver: @escaping Deliver) throws(RenderError) {
        self.cameras = cameras
        self.model = model
        self.cameraOfSlot = cameraOfSlot
        self.deliver = deliver
        var f: Int32 = 0
        if settings.shadows ?? false { f |= Int32(ROBOSIM_RENDER_SHADOWS) }
        if settings.reflections ?? false { f |= Int32(ROBOSIM_RENDER_REFLECTIONS) }
        if settings.skybox ?? true { f |= Int32(ROBOSIM_RENDER_SKYBOX) }
        flags = f
        // Rendering reads only the visual settings; physics never does, so the shared model may change here.
        let m = model.pointer
        m.pointee.vis.global.offwidth = Int32(max(Int(m.pointee.vis.global.offwidth), cameras.map(\.width).max() ?? 1))
        m.pointee.vis.global.offheight = Int32(max(Int(m.pointee.vis.global.offheight), cameras.map(\.height).max() ?? 1))
        m.pointee.vis.quality.offsamples = Int32(settings.multisamples ?? 0)
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

    package var statistics: Statistics { condition.lock(); defer { condition.unlock() }; return stats }

    /// Stops the render threads after the frame each is drawing; waiting frames are dropped and
    /// waiting batches fail.
    package func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        while startedWorkers > 0 { condition.wait() }
        condition.unlock()
    }

    /// Queues topic frames: one waiting snapshot per slot, the newest.
    package func submit(_ due: [(slot: Int, snapshot: StateSnapshot)]) {
        guard !due.isEmpty else { return }
        condition.lock()
        for (slot, snapshot) in due {
            if pending.updateValue(snapshot, forKey: slot) != nil {
                stats.skipped += 1
            } else {
                queue.append(slot)
            }
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Renders `cameras` (indices) of each snapshot and waits: frames in snapshot-major,
    /// camera-minor order.
    package func render(_ snapshots: [StateSnapshot], cameras indices: [Int]) throws(RenderError) -> [(snapshot: StateSnapshot, camera: Int, frame: RenderedFrame)] {
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
        var frames: [(snapshot: StateSnapshot, camera: Int, frame: RenderedFrame)] = []
        frames.reserveCapacity(items.count)
        for (k, item) in items.enumerated() { frames.append((item.snapshot, item.camera, try batch.results[k]!.get())) }
        return frames
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
                let result = Result { () throws(RenderError) in try worker.render(snapshot, camera: cameras[cameraOfSlot(slot)]) }
                deliver(slot, snapshot, result)
                condition.lock()
                if case .failure = result { stats.failed += 1 }
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
}
