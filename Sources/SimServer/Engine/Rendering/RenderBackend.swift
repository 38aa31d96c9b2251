import CMuJoCo
import Foundation

/// Which OpenGL implementation renders cameras offscreen. One per process: MuJoCo takes its GL
/// functions from whichever library the process has loaded.
public enum RenderBackend: String, Sendable, CaseIterable {
    /// `MUJOCO_GL` when it says egl or osmesa; else EGL where a GPU device node exists
    /// (/dev/nvidia*, /dev/dri/renderD*), else OSMesa.
    case auto
    /// Mesa's software renderer (CPU, no display).
    case osmesa
    /// EGL without a display: a GPU (`ROBOSIM_EGL_DEVICE` picks one), or Mesa's surfaceless platform.
    case egl
    /// No rendering: camera topics and pixel observations are off.
    case none

    /// The backend `auto` resolves to on this machine.
    package static func automatic(environment: [String: String] = ProcessInfo.processInfo.environment) -> RenderBackend {
        switch environment["MUJOCO_GL"]?.lowercased() {
        case "egl": return .egl
        case "osmesa": return .osmesa
        default: break
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: "/dev/nvidia0") { return .egl }
        if let nodes = try? fm.contentsOfDirectory(atPath: "/dev/dri"), nodes.contains(where: { $0.hasPrefix("renderD") }) { return .egl }
        return .osmesa
    }

    /// Loads the backend's library for this process (idempotent). Returns the backend in use and
    /// a description, or throws with a one-line reason. `auto` falls back to OSMesa when EGL fails.
    ///
    /// With OSMesa and `renderThreads` > 1, Mesa's llvmpipe draws each frame on the calling render
    /// thread (`LP_NUM_THREADS=0`, unless the environment sets it): the render threads already use
    /// the cores, and llvmpipe's own threads cost more than they give on small frames. One render
    /// thread keeps llvmpipe's threads (faster for one large camera).
    package static func load(_ choice: RenderBackend, renderThreads: Int = 1) throws(RenderError) -> (backend: RenderBackend, description: String) {
        let backend = choice == .auto ? automatic() : choice
        if backend != .egl, renderThreads > 1 { setenv("LP_NUM_THREADS", "0", 0) }
        switch backend {
        case .none, .auto:
            return (.none, "none")
        case .osmesa, .egl:
            var error = [CChar](repeating: 0, count: 512)
            let code = backend == .egl ? Int32(ROBOSIM_GL_EGL) : Int32(ROBOSIM_GL_OSMESA)
            if robosim_gl_load(code, &error, Int32(error.count)) == 0 {
                return (backend, String(cString: robosim_gl_description_string()))
            }
            let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if choice == .auto, backend == .egl, robosim_gl_load(Int32(ROBOSIM_GL_OSMESA), &error, Int32(error.count)) == 0 {
                return (.osmesa, String(cString: robosim_gl_description_string()) + " (EGL failed: \(reason))")
            }
            throw RenderError("\(backend.rawValue): \(reason)")
        }
    }
}

/// Rendering could not be set up or a frame could not be made: a one-line reason.
public struct RenderError: Error, CustomStringConvertible, Sendable {
    public let description: String
    package init(_ description: String) { self.description = description }
}
