import Foundation
import Messaging
import SimEngine
import SwiftProtobuf
import Synchronization

/// The scene's camera topics for every env (`/env_i/camera/<cam>/image_raw`, `depth`,
/// `camera_info`) and the pixel observations of `/sim/step` and `/sim/reset`, drawn by the
/// engine's render pool.
///
/// A frame of an episode that has since been reset is dropped, never published: after a reset,
/// every published frame shows the new episode. Each topic's frames go out in order of their
/// stamps (render threads may finish out of order: a frame older than one already published is
/// dropped too).
final class CameraPublisher: Sendable {
    private struct Topics: Sendable {
        let image: Publisher<SensorMsgs_Image>?
        let depth: Publisher<SensorMsgs_Image>?
        let info: Publisher<SensorMsgs_CameraInfo>
    }

    /// What the render threads check and update as they publish.
    private struct Published {
        /// Per env: the episode count its frames must belong to.
        var epochs: [UInt64]
        /// Per (env, camera): the episode count and stamp of the last published frame.
        var last: [(epoch: UInt64, stamp: Double)]
        var published = 0
        var stale = 0
    }

    let cameras: [CameraSpec]
    let backend: RenderBackend
    let backendDescription: String
    private let topics: [[Topics]]
    private let published: Mutex<Published>
    // Invariant: set once in init, before any frame can be delivered; the pool's threads read it.
    private nonisolated(unsafe) var pool: RenderPool!

    /// Advertises the topics and starts the render pool (`threads` threads, each with its own GL
    /// context). Throws when a context cannot be made.
    init(cameras: [CameraSpec], world: World, node: Node, backend: RenderBackend, description: String,
         settings: Scene.RenderSettings, threads: Int) throws {
        self.cameras = cameras
        self.backend = backend
        backendDescription = description
        topics = try (0..<world.envs.count).map { i in
            try cameras.map { c in
                let ns = "\(Names.env(i))/camera/\(c.name)"
                return Topics(image: c.rgb ? try node.advertise("\(ns)/image_raw", qos: .sensor) : nil,
                              depth: c.depth ? try node.advertise("\(ns)/depth", qos: .sensor) : nil,
                              info: try node.advertise("\(ns)/camera_info", qos: .sensor))
            }
        }
        published = Mutex(Published(epochs: world.envs.map(\.episodeStarts),
                                    last: Array(repeating: (0, -.infinity), count: world.envs.count * cameras.count)))
        let n = cameras.count
        pool = try RenderPool(cameras: cameras, model: world.model, settings: settings, threads: threads,
                              cameraOfSlot: { $0 % n }, deliver: { [weak self] slot, snapshot, frame in
                                  self?.deliver(slot: slot, snapshot: snapshot, frame: frame)
                              })
    }

    /// The render threads stop with the publisher (a server that was never stopped).
    deinit { pool?.stop() }

    /// Stops the render threads (waiting frames are dropped, waiting observation requests fail).
    func stop() { pool.stop() }

    var statistics: CameraStatistics {
        let s = pool.statistics
        return published.withLock { p in
            CameraStatistics(published: p.published, skipped: s.skipped, stale: p.stale, failed: s.failed,
                             observationFrames: s.observationFrames, renderSeconds: s.renderSeconds)
        }
    }

    /// Step loop: env `i` started episode `epoch`; frames of its earlier episodes are dropped from
    /// now on. Taken under the lock the render threads publish under, so a frame being sent now
    /// goes out before the reset's events.
    func noteEpisode(env i: Int, epoch: UInt64) {
        published.withLock { $0.epochs[i] = epoch }
    }

    /// Step loop: queues the due frames (slot = env × cameras + camera).
    func submit(_ due: [(slot: Int, snapshot: StateSnapshot)]) { pool.submit(due) }

    /// The topic names of camera `c` of env `i` (nil where the camera has no such topic).
    func topicNames(env i: Int, camera c: Int) -> [String] {
        let t = topics[i][c]
        return [t.image?.topic, t.depth?.topic, t.info.topic].compactMap { $0 }
    }

    /// Renders `cameras` (indices) of each snapshot and waits; per snapshot and camera, its rgb
    /// image, then its depth image, as the camera renders them.
    func render(_ snapshots: [StateSnapshot], cameras indices: [Int]) throws(RenderError) -> [SensorMsgs_Image] {
        var images: [SensorMsgs_Image] = []
        for (snapshot, c, frame) in try pool.render(snapshots, cameras: indices) {
            let stamp = BuiltinInterfaces_Time(seconds: snapshot.stamp)
            if let rgb = frame.rgb { images.append(Self.rgbImage(rgb, cameras[c], stamp)) }
            if let depth = frame.depth { images.append(Self.depthImage(depth, cameras[c], stamp)) }
        }
        return images
    }

    /// Render thread: serializes a finished topic frame (outside the lock) and publishes it when it
    /// still belongs to its env's current episode and is newer than the last published one.
    private func deliver(slot: Int, snapshot: StateSnapshot, frame: Result<RenderedFrame, RenderError>) {
        guard case .success(let f) = frame else { return }
        let camera = cameras[slot % cameras.count]
        let stamp = BuiltinInterfaces_Time(seconds: snapshot.stamp)
        let image: [UInt8]?, depth: [UInt8]?, info: [UInt8]
        do {
            image = try f.rgb.map { try Self.rgbImage($0, camera, stamp).serializedBytes() }
            depth = try f.depth.map { try Self.depthImage($0, camera, stamp).serializedBytes() }
            info = try Self.cameraInfo(camera, stamp).serializedBytes()
        } catch {
            return
        }
        published.withLock { p in
            guard p.epochs[snapshot.env] == snapshot.epoch,
                  snapshot.epoch > p.last[slot].epoch || snapshot.stamp > p.last[slot].stamp
            else {
                p.stale += 1
                return
            }
            // Sent under the lock: a reset that lands now waits until this frame is out.
            let t = topics[snapshot.env][slot % cameras.count]
            if let image { t.image?.raw.publish(serialized: image) }
            if let depth { t.depth?.raw.publish(serialized: depth) }
            t.info.raw.publish(serialized: info)
            p.last[slot] = (snapshot.epoch, snapshot.stamp)
            p.published += 1
        }
    }

    // MARK: Messages

    static func rgbImage(_ rgb: [UInt8], _ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_Image {
        image(camera, stamp, encoding: "rgb8", bytesPerPixel: 3, data: Data(rgb))
    }

    /// Little-endian IEEE floats (every platform Swift runs the server on), metres.
    static func depthImage(_ depth: [Float], _ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_Image {
        image(camera, stamp, encoding: "32FC1", bytesPerPixel: 4, data: depth.withUnsafeBytes { Data($0) })
    }

    private static func image(_ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time, encoding: String, bytesPerPixel: Int,
                              data: Data) -> SensorMsgs_Image {
        var m = SensorMsgs_Image()
        m.header.stamp = stamp
        m.header.frameID = camera.frameID
        m.width = UInt32(camera.width)
        m.height = UInt32(camera.height)
        m.encoding = encoding
        m.isBigendian = 0
        m.step = UInt32(bytesPerPixel * camera.width)
        m.data = data
        return m
    }

    /// The camera's `camera_info`: pinhole intrinsics from its field of view (no distortion).
    static func cameraInfo(_ camera: CameraSpec, _ stamp: BuiltinInterfaces_Time) -> SensorMsgs_CameraInfo {
        let f = camera.focalLength, (cx, cy) = camera.principalPoint
        var info = SensorMsgs_CameraInfo()
        info.header.stamp = stamp
        info.header.frameID = camera.frameID
        info.width = UInt32(camera.width)
        info.height = UInt32(camera.height)
        info.distortionModel = "plumb_bob"
        info.d = [0, 0, 0, 0, 0]
        info.k = [f, 0, cx, 0, f, cy, 0, 0, 1]
        info.r = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        info.p = [f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0]
        return info
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
