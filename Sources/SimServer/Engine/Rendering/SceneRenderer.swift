import CMuJoCo
import Foundation

/// Renders one camera of a scene in its initial state on the calling thread, through the same
/// path as the server's render threads (state snapshot, MuJoCo's renderer, read-back, row flip,
/// depth in metres). For tools and benchmarks; the server itself uses `RenderPool` (through the server's `CameraPublisher`). Its GL
/// context is current on the thread that made it: use and release it there, one at a time.
public final class SceneRenderer {
    private let model: MuJoCoModel
    private let data: UnsafeMutablePointer<mjData>
    private let worker: RenderWorker
    private let camera: CameraSpec
    private let snapshot: StateSnapshot
    /// The backend in use, e.g. "OSMesa (software)".
    public let backendDescription: String

    /// `camera`: a manifest camera of the scene, or any camera of its model, drawn at
    /// `width` x `height` with the given options (shadows, reflections and multisampling off by default).
    public init(scene directory: String, camera name: String, width: Int, height: Int, rgb: Bool = true, depth: Bool = false,
                backend: RenderBackend = .auto, settings: Scene.RenderSettings = .init()) throws {
        robosim_mj_install_handlers()
        let scene = try Scene(directory: directory)
        model = try MuJoCoModel(path: scene.modelPath)
        var declared = scene.manifest.cameras.first { $0.name == name }
            ?? Scene.Camera(name: name, width: width, height: height, rateHz: 1)
        declared.width = width
        declared.height = height
        declared.rgb = rgb
        declared.depth = depth
        camera = try CameraSpec.resolve([declared], model: model, manifestPath: scene.manifestPath)[0]
        let (loaded, description) = try RenderBackend.load(backend == .none ? .auto : backend)
        guard loaded != .none else { throw RenderError("no rendering backend") }
        backendDescription = description
        let m = model.pointer
        m.pointee.vis.global.offwidth = Int32(max(Int(m.pointee.vis.global.offwidth), width))
        m.pointee.vis.global.offheight = Int32(max(Int(m.pointee.vis.global.offheight), height))
        m.pointee.vis.quality.offsamples = Int32(settings.multisamples ?? 0)
        var flags: Int32 = 0
        if settings.shadows ?? false { flags |= Int32(ROBOSIM_RENDER_SHADOWS) }
        if settings.reflections ?? false { flags |= Int32(ROBOSIM_RENDER_REFLECTIONS) }
        if settings.skybox ?? true { flags |= Int32(ROBOSIM_RENDER_SKYBOX) }
        worker = try RenderWorker(model: model, flags: flags)
        guard let d = mj_makeData(m) else { throw RenderError("out of memory") }
        data = d
        let home = mj_name2id(m, Int32(mjOBJ_KEY.rawValue), "home")
        robosim_mj_reset(m, d, home)
        mj_forward(m, d)
        snapshot = StateSnapshot(env: 0, epoch: 0, stamp: 0, model: m, data: d)
    }

    deinit { mj_deleteData(data) }

    /// One frame: rgb8 rows top-down (`width * height * 3` bytes) and/or depth in metres.
    public func render() throws -> (rgb: [UInt8]?, depth: [Float]?) {
        let frame = try worker.render(snapshot, camera: camera)
        return (frame.rgb, frame.depth)
    }
}
