import CMuJoCo

/// What a camera needs of an env's state to draw it: positions (qpos) and mocap poses, with the
/// sim time and the env's episode count when it was taken. Taken by the step loop in
/// microseconds and rendered later on a render thread, so physics never waits for a camera.
package struct StateSnapshot: Sendable {
    package let env: Int
    /// The env's `episodeStarts` when taken: a frame of an earlier episode is never published
    /// once a new one has started.
    package let epoch: UInt64
    /// Sim time of the step loop (seconds): the images' header stamp.
    package let stamp: Double
    private let qpos: [Double]
    private let mocapPos: [Double]
    private let mocapQuat: [Double]

    package init(env: Int, epoch: UInt64, stamp: Double, model m: UnsafePointer<mjModel>, data d: UnsafePointer<mjData>) {
        self.env = env
        self.epoch = epoch
        self.stamp = stamp
        let nq = Int(m.pointee.nq), nmocap = Int(m.pointee.nmocap)
        qpos = Array(UnsafeBufferPointer(start: d.pointee.qpos, count: nq))
        mocapPos = nmocap > 0 ? Array(UnsafeBufferPointer(start: d.pointee.mocap_pos, count: 3 * nmocap)) : []
        mocapQuat = nmocap > 0 ? Array(UnsafeBufferPointer(start: d.pointee.mocap_quat, count: 4 * nmocap)) : []
    }

    /// `other` restamped (the final state of an episode, stamped with the step that ended it).
    package init(env: Int, epoch: UInt64, stamp: Double, copying other: StateSnapshot) {
        self.env = env
        self.epoch = epoch
        self.stamp = stamp
        qpos = other.qpos
        mocapPos = other.mocapPos
        mocapQuat = other.mocapQuat
    }

    /// Writes the state into `d` (a render thread's own data) and computes what rendering reads.
    package func restore(_ m: UnsafePointer<mjModel>, into d: UnsafeMutablePointer<mjData>) throws(RenderError) {
        if !qpos.isEmpty { qpos.withUnsafeBufferPointer { d.pointee.qpos.update(from: $0.baseAddress!, count: $0.count) } }
        if !mocapPos.isEmpty {
            mocapPos.withUnsafeBufferPointer { d.pointee.mocap_pos.update(from: $0.baseAddress!, count: $0.count) }
            mocapQuat.withUnsafeBufferPointer { d.pointee.mocap_quat.update(from: $0.baseAddress!, count: $0.count) }
        }
        var error = [CChar](repeating: 0, count: 256)
        guard robosim_render_prepare(m, d, &error, Int32(error.count)) == 0 else {
            throw RenderError("MuJoCo: " + String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}
