import CMuJoCo
import Foundation

/// One camera of a scene, resolved against the model: where it is mounted, its image size, field
/// of view and rate, and what it renders. Its pinhole intrinsics follow from the vertical field of
/// view and the image size (square pixels, principal point at the image centre, no distortion):
/// `fy = fx = (height / 2) / tan(fovy / 2)`, `cx = (width - 1) / 2`, `cy = (height - 1) / 2` in
/// pixel coordinates whose integer values are pixel centres. Plain values.
package struct CameraSpec: Sendable, Equatable {
    package enum Mount: Sendable, Equatable {
        /// The model's camera with this id (fixed, or carried by its body in the MJCF).
        case modelCamera(Int)
        /// Mounted by the manifest on a body (0: the world): position and row-major rotation in its frame.
        case body(Int, position: [Double], rotation: [Double])
    }

    package let name: String
    package let width: Int
    package let height: Int
    package let fovyDegrees: Double
    package let rateHz: Double
    package let rgb: Bool
    package let depth: Bool
    /// Part of the pixel observation of `/sim/step` and `/sim/reset`.
    package let observation: Bool
    package let mount: Mount

    /// The optical frame named in image headers: z forward, x right, y down (ROS REP 103).
    package var frameID: String { name + "_optical_frame" }

    package var focalLength: Double { Double(height) / 2 / tan(fovyDegrees * .pi / 360) }
    package var principalPoint: (x: Double, y: Double) { ((Double(width) - 1) / 2, (Double(height) - 1) / 2) }

    /// The camera's world pose in a state whose kinematics (and camera poses) are computed.
    package func pose(_ m: UnsafePointer<mjModel>, _ d: UnsafePointer<mjData>) -> robosim_camera_pose {
        var p = robosim_camera_pose()
        p.fovy_deg = fovyDegrees
        switch mount {
        case .modelCamera(let id):
            withUnsafeMutableBytes(of: &p.pos) { $0.copyMemory(from: UnsafeRawBufferPointer(start: d.pointee.cam_xpos + 3 * id, count: 24)) }
            withUnsafeMutableBytes(of: &p.xmat) { $0.copyMemory(from: UnsafeRawBufferPointer(start: d.pointee.cam_xmat + 9 * id, count: 72)) }
        case .body(let b, let position, let rotation):
            let bp = d.pointee.xpos + 3 * b, bm = d.pointee.xmat + 9 * b
            var pos = [Double](repeating: 0, count: 3), mat = [Double](repeating: 0, count: 9)
            for r in 0..<3 {
                pos[r] = bp[r] + bm[3 * r] * position[0] + bm[3 * r + 1] * position[1] + bm[3 * r + 2] * position[2]
                for c in 0..<3 { mat[3 * r + c] = bm[3 * r] * rotation[c] + bm[3 * r + 1] * rotation[3 + c] + bm[3 * r + 2] * rotation[6 + c] }
            }
            p.pos = (pos[0], pos[1], pos[2])
            p.xmat = (mat[0], mat[1], mat[2], mat[3], mat[4], mat[5], mat[6], mat[7], mat[8])
        }
        return p
    }

    /// The manifest's cameras against the model: each names a model camera or mounts itself on a
    /// body. Throws a `SceneError` naming the camera.
    package static func resolve(_ cameras: [Scene.Camera], model: MuJoCoModel, manifestPath: String) throws(SceneError) -> [CameraSpec] {
        let m = model.pointer
        var out: [CameraSpec] = []
        for (i, c) in cameras.enumerated() {
            let place = "cameras[\(i)]"
            let mount: Mount
            var fovy = c.fovy
            if let body = c.body {
                let id = body == "world" ? 0 : Int(mj_name2id(m, Int32(mjOBJ_BODY.rawValue), body))
                guard id >= 0 else { throw SceneError(file: manifestPath, place: place + ".body", problem: "the model has no body '\(body)'") }
                mount = .body(id, position: c.pos ?? [0, 0, 0], rotation: rotation(xyaxes: c.xyaxes, quat: c.quat))
            } else {
                let id = Int(mj_name2id(m, Int32(mjOBJ_CAMERA.rawValue), c.name))
                guard id >= 0 else {
                    throw SceneError(file: manifestPath, place: place,
                                     problem: "the model has no camera '\(c.name)': add it to the MJCF, or mount it here with body, pos and xyaxes")
                }
                mount = .modelCamera(id)
                fovy = fovy ?? m.pointee.cam_fovy[id]
            }
            out.append(CameraSpec(name: c.name, width: c.width, height: c.height, fovyDegrees: fovy ?? 45, rateHz: c.rateHz,
                                  rgb: c.rgb ?? true, depth: c.depth ?? false, observation: c.observation ?? false, mount: mount))
        }
        return out
    }

    /// A row-major rotation (columns: the camera's x, y, z axes) from MJCF's xyaxes or quat.
    package static func rotation(xyaxes: [Double]?, quat: [Double]?) -> [Double] {
        if let q = quat {
            var mat = [Double](repeating: 0, count: 9)
            var unit = q
            mju_normalize4(&unit)
            mju_quat2Mat(&mat, unit)
            return mat
        }
        guard let a = xyaxes else { return [1, 0, 0, 0, 1, 0, 0, 0, 1] }
        func normalized(_ v: SIMD3<Double>) -> SIMD3<Double> { v / max(1e-12, (v * v).sum().squareRoot()) }
        let x = normalized(SIMD3(a[0], a[1], a[2]))
        var y = SIMD3(a[3], a[4], a[5])
        y = normalized(y - (x * y).sum() * x)
        let z = SIMD3(x.y * y.z - x.z * y.y, x.z * y.x - x.x * y.z, x.x * y.y - x.y * y.x)
        return [x.x, y.x, z.x, x.y, y.y, z.y, x.z, y.z, z.z]
    }
}
