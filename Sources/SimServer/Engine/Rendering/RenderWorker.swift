import CMuJoCo
import Foundation

/// Pixels of one camera: rgb8 rows top-down, and depth in metres (+inf where nothing was hit).
package struct RenderedFrame: Sendable {
    package var rgb: [UInt8]?
    package var depth: [Float]?
}

/// What a render thread owns: a GL context current on it, MuJoCo's scene and rendering context,
/// and its own mjData that snapshots are restored into. Created, used and freed on that thread.
package final class RenderWorker {
    private let model: MuJoCoModel
    private let gl: OpaquePointer
    private let renderer: OpaquePointer
    private let data: UnsafeMutablePointer<mjData>
    private let flags: Int32
    private var error = [CChar](repeating: 0, count: 512)

    /// Makes the contexts on the calling thread (about 100 ms with OSMesa, once).
    package init(model: MuJoCoModel, flags: Int32) throws(RenderError) {
        self.model = model
        self.flags = flags
        var message = [CChar](repeating: 0, count: 512)
        guard let gl = robosim_gl_context_create(&message, Int32(message.count)) else { throw RenderError(Self.text(message)) }
        let m = model.pointer
        let maxGeoms = Int32(2 * Int(m.pointee.ngeom) + 1000)
        guard let renderer = robosim_renderer_create(m, maxGeoms, &message, Int32(message.count)) else {
            robosim_gl_context_destroy(gl)
            throw RenderError("MuJoCo rendering context: " + Self.text(message))
        }
        guard let data = mj_makeData(m) else {
            robosim_renderer_free(renderer)
            robosim_gl_context_destroy(gl)
            throw RenderError("out of memory")
        }
        self.gl = gl
        self.renderer = renderer
        self.data = data
    }

    deinit {
        mj_deleteData(data)
        robosim_renderer_free(renderer)
        robosim_gl_context_destroy(gl)
    }

    /// Renders `snapshot` from `camera`.
    package func render(_ snapshot: StateSnapshot, camera: CameraSpec, rgb wantRGB: Bool? = nil, depth wantDepth: Bool? = nil) throws(RenderError) -> RenderedFrame {
        let m = model.pointer
        try snapshot.restore(m, into: data)
        var pose = camera.pose(m, data)
        let n = camera.width * camera.height
        var rgb = (wantRGB ?? camera.rgb) ? [UInt8](repeating: 0, count: 3 * n) : nil
        var depth = (wantDepth ?? camera.depth) ? [Float](repeating: 0, count: n) : nil
        let rc = Self.withOptionalPointer(&rgb) { rgbPointer in
            Self.withOptionalPointer(&depth) { depthPointer in
                robosim_render(renderer, m, data, &pose, Int32(camera.width), Int32(camera.height), flags, rgbPointer, depthPointer,
                               &error, Int32(error.count))
            }
        }
        guard rc == 0 else { throw RenderError("camera \(camera.name): " + Self.text(error)) }
        return RenderedFrame(rgb: rgb, depth: depth)
    }

    private static func withOptionalPointer<T, R>(_ array: inout [T]?, _ body: (UnsafeMutablePointer<T>?) -> R) -> R {
        guard array != nil else { return body(nil) }
        return array!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
    }

    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
