import CMuJoCo
import Foundation
import PluginAPI

/// A compiled MuJoCo model: immutable once loaded and shared by every environment.
package final class MuJoCoModel: @unchecked Sendable {
    // Invariant: never written after init; MuJoCo only reads a model while stepping.
    package let pointer: UnsafeMutablePointer<mjModel>

    /// Loads an MJCF (or URDF) file. Throws a `SceneError` with MuJoCo's message (it names the line).
    package init(path: String) throws(SceneError) {
        robosim_mj_install_handlers()
        var error = [CChar](repeating: 0, count: 1000)
        guard let m = mj_loadXML(path, nil, &error, Int32(error.count)) else {
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw SceneError(file: path, place: nil, problem: message.isEmpty ? "MuJoCo could not load the model" : message)
        }
        pointer = m
    }

    deinit { mj_deleteModel(pointer) }

    package var timestep: Double { pointer.pointee.opt.timestep }

    package func name(_ type: mjtObj, _ id: Int) -> String? {
        guard let c = mj_id2name(pointer, Int32(type.rawValue), Int32(id)) else { return nil }
        return String(cString: c)
    }

    /// The plugin-facing view of this model.
    package func view() -> ModelView {
        let m = pointer.pointee
        var joints: [String: ModelView.Joint] = [:]
        for j in 0..<Int(m.njnt) {
            guard let n = name(mjOBJ_JOINT, j) else { continue }
            let limited = m.jnt_limited[j]
            let range = limited ? m.jnt_range[2 * j]...max(m.jnt_range[2 * j], m.jnt_range[2 * j + 1]) : nil
            joints[n] = ModelView.Joint(index: j, kind: ModelView.Joint.Kind(rawValue: Int(m.jnt_type[j])) ?? .hinge,
                                        qposAddress: Int(m.jnt_qposadr[j]), dofAddress: Int(m.jnt_dofadr[j]), range: range)
        }
        func names(_ type: mjtObj, _ count: Int) -> [String: Int] {
            var out: [String: Int] = [:]
            for i in 0..<count { if let n = name(type, i) { out[n] = i } }
            return out
        }
        let actuatorJoints: [String?] = (0..<Int(m.nu)).map { a in
            let type = m.actuator_trntype[a]
            guard type == Int32(mjTRN_JOINT.rawValue) || type == Int32(mjTRN_JOINTINPARENT.rawValue) else { return nil }
            return name(mjOBJ_JOINT, Int(m.actuator_trnid[2 * a]))
        }
        let controlRanges: [ClosedRange<Double>?] = (0..<Int(m.nu)).map { a -> ClosedRange<Double>? in
            guard m.actuator_ctrllimited[a] else { return nil }
            let low = m.actuator_ctrlrange[2 * a], high = m.actuator_ctrlrange[2 * a + 1]
            return low...max(low, high)
        }
        return ModelView(nq: Int(m.nq), nv: Int(m.nv), nu: Int(m.nu), nbody: Int(m.nbody), nsite: Int(m.nsite),
                         timestep: m.opt.timestep, joints: joints, actuators: names(mjOBJ_ACTUATOR, Int(m.nu)),
                         bodies: names(mjOBJ_BODY, Int(m.nbody)), sites: names(mjOBJ_SITE, Int(m.nsite)), controlRanges: controlRanges,
                         actuatorJoints: actuatorJoints)
    }
}
