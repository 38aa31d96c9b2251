import CMuJoCo
import PluginAPI

/// Quaternions as SIMD4 (w, x, y, z), MuJoCo's order.
package enum Quaternion {
    package static func multiply(_ a: SIMD4<Double>, _ b: SIMD4<Double>) -> SIMD4<Double> {
        SIMD4(a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
              a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
              a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
              a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0])
    }

    package static func conjugate(_ q: SIMD4<Double>) -> SIMD4<Double> { SIMD4(q[0], -q[1], -q[2], -q[3]) }

    /// The rotation vector (axis times angle, world frame) that turns `from` into `to`.
    package static func difference(from: SIMD4<Double>, to: SIMD4<Double>) -> SIMD3<Double> {
        var e = multiply(to, conjugate(from))
        if e[0] < 0 { e = -e }
        let v = SIMD3(e[1], e[2], e[3])
        let s = (v * v).sum().squareRoot()
        guard s > 1e-12 else { return 2 * v }
        return v * (2 * atan2(s, e[0]) / s)
    }
}

/// Forward and inverse kinematics of a robot's tool site over its joints, computed by MuJoCo on
/// an env's own data: the solver writes candidate joint positions into `qpos`, runs
/// `mj_kinematics`/`mj_comPos`/`mj_jacSite`, and puts the saved positions back. Only derived
/// quantities that the next `mj_step` recomputes are left changed, so stepping stays bit-identical.
package struct ArmKinematics: @unchecked Sendable {
    // Invariant: the model pointer is immutable and outlives the world.
    package let model: UnsafeMutablePointer<mjModel>
    package let site: Int32
    package let qposAddresses: [Int]
    package let dofAddresses: [Int]
    package let limits: [ClosedRange<Double>]

    package init(model: MuJoCoModel, site: Int, joints: [RobotJoint]) {
        self.model = model.pointer
        self.site = Int32(site)
        qposAddresses = joints.map(\.joint.qposAddress)
        dofAddresses = joints.map(\.joint.dofAddress)
        limits = joints.map(\.limits.position)
    }

    package var count: Int { qposAddresses.count }

    /// Per-env buffers, so solving allocates nothing.
    package struct Scratch {
        package var saved: [Double]
        package var q: [Double]
        package var jacp: [Double]
        package var jacr: [Double]
        package var jacobian: [Double]   // 6 x n, row-major
        package var system: [Double]     // 6 x 7 augmented
        package var step: [Double]
        package init(joints n: Int, nv: Int) {
            saved = Array(repeating: 0, count: n)
            q = Array(repeating: 0, count: n)
            jacp = Array(repeating: 0, count: 3 * nv)
            jacr = Array(repeating: 0, count: 3 * nv)
            jacobian = Array(repeating: 0, count: 6 * n)
            system = Array(repeating: 0, count: 42)
            step = Array(repeating: 0, count: n)
        }
    }

    package func makeScratch() -> Scratch { Scratch(joints: count, nv: Int(model.pointee.nv)) }

    /// The tool's pose at joint positions `q`.
    package func toolPose(_ d: UnsafeMutablePointer<mjData>, at q: [Double], scratch: inout Scratch) -> (position: SIMD3<Double>, orientation: SIMD4<Double>) {
        save(d, &scratch)
        defer { restore(d, scratch) }
        setJoints(d, q)
        mj_kinematics(model, d)
        return sitePose(d)
    }

    /// Inverse kinematics by damped least squares from `seed`: joint positions (within the
    /// limits) putting the tool at `position` with `orientation`, and the remaining position (m)
    /// and orientation (rad) errors.
    package func solve(_ d: UnsafeMutablePointer<mjData>, position: SIMD3<Double>, orientation: SIMD4<Double>, seed: [Double],
               iterations: Int, scratch s: inout Scratch, into out: inout [Double]) -> (position: Double, orientation: Double) {
        save(d, &s)
        defer { restore(d, s) }
        let n = count, nv = Int(model.pointee.nv)
        for k in 0..<n { s.q[k] = seed[k] }
        var errors = (position: Double.infinity, orientation: Double.infinity)
        let damping = 1e-4   // λ² of the damped least squares
        for iteration in 0...iterations {
            setJoints(d, s.q)
            mj_kinematics(model, d)
            let (p, o) = sitePose(d)
            let ep = position - p
            let er = Quaternion.difference(from: o, to: orientation)
            errors = ((ep * ep).sum().squareRoot(), (er * er).sum().squareRoot())
            if (errors.position < 1e-5 && errors.orientation < 1e-4) || iteration == iterations { break }
            mj_comPos(model, d)
            s.jacp.withUnsafeMutableBufferPointer { jp in
                s.jacr.withUnsafeMutableBufferPointer { jr in mj_jacSite(model, d, jp.baseAddress, jr.baseAddress, site) }
            }
            for k in 0..<n {
                for r in 0..<3 {
                    s.jacobian[r * n + k] = s.jacp[r * nv + dofAddresses[k]]
                    s.jacobian[(r + 3) * n + k] = s.jacr[r * nv + dofAddresses[k]]
                }
            }
            // (J Jᵀ + λ² I) y = e, then Δq = Jᵀ y.
            let e = SIMD8(ep.x, ep.y, ep.z, er.x, er.y, er.z, 0, 0)
            for r in 0..<6 {
                for c in 0..<6 {
                    var sum = r == c ? damping : 0
                    for k in 0..<n { sum += s.jacobian[r * n + k] * s.jacobian[c * n + k] }
                    s.system[r * 7 + c] = sum
                }
                s.system[r * 7 + 6] = e[r]
            }
            guard Self.solve6(&s.system) else { break }
            var largest = 0.0
            for k in 0..<n {
                var sum = 0.0
                for r in 0..<6 { sum += s.jacobian[r * n + k] * s.system[r * 7 + 6] }
                s.step[k] = sum
                largest = max(largest, abs(sum))
            }
            let scale = largest > 0.2 ? 0.2 / largest : 1
            for k in 0..<n { s.q[k] = min(max(s.q[k] + scale * s.step[k], limits[k].lowerBound), limits[k].upperBound) }
        }
        for k in 0..<n { out[k] = s.q[k] }
        return errors
    }

    private func sitePose(_ d: UnsafeMutablePointer<mjData>) -> (SIMD3<Double>, SIMD4<Double>) {
        let i = Int(site)
        let p = SIMD3(d.pointee.site_xpos[3 * i], d.pointee.site_xpos[3 * i + 1], d.pointee.site_xpos[3 * i + 2])
        var q = SIMD4<Double>()   // on the stack: this runs every IK iteration
        withUnsafeMutableBytes(of: &q) { mju_mat2Quat($0.baseAddress!.assumingMemoryBound(to: Double.self), d.pointee.site_xmat + 9 * i) }
        return (p, q)
    }

    private func setJoints(_ d: UnsafeMutablePointer<mjData>, _ q: [Double]) {
        for (k, a) in qposAddresses.enumerated() { d.pointee.qpos[a] = q[k] }
    }

    private func save(_ d: UnsafeMutablePointer<mjData>, _ s: inout Scratch) {
        for (k, a) in qposAddresses.enumerated() { s.saved[k] = d.pointee.qpos[a] }
    }

    private func restore(_ d: UnsafeMutablePointer<mjData>, _ s: Scratch) {
        for (k, a) in qposAddresses.enumerated() { d.pointee.qpos[a] = s.saved[k] }
    }

    /// Solves the 6x6 system in `m` (6 rows of 7: matrix and right-hand side) in place by Gaussian
    /// elimination with partial pivoting; the solution ends in column 6. False when singular.
    package static func solve6(_ m: inout [Double]) -> Bool {
        for c in 0..<6 {
            var pivot = c
            for r in (c + 1)..<6 where abs(m[r * 7 + c]) > abs(m[pivot * 7 + c]) { pivot = r }
            guard abs(m[pivot * 7 + c]) > 1e-14 else { return false }
            if pivot != c { for k in 0..<7 { m.swapAt(c * 7 + k, pivot * 7 + k) } }
            for r in 0..<6 where r != c {
                let f = m[r * 7 + c] / m[c * 7 + c]
                if f != 0 { for k in c..<7 { m[r * 7 + k] -= f * m[c * 7 + k] } }
            }
        }
        for r in 0..<6 { m[r * 7 + 6] /= m[r * 7 + r] }
        return true
    }
}
