/// The learner's numeric kernels on row-major `Float` buffers: the three products of a dense
/// layer, written so that the inner loops run over contiguous memory (the compiler vectorizes
/// them) and reductions use explicit 8-wide SIMD accumulators. One thread, fixed order: the same
/// inputs give the same bits.
///
/// Measured against the alternatives before choosing (BENCHMARKS.md, "PPO update"): this machine
/// has no tuned BLAS (Debian's reference `libblas` only), and for layers of 64 units these loops
/// keep the data in L1.
enum Kernels {
    /// y[b×o] = x[b×i] · w[i×o] + bias[o].
    static func linear(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                       _ y: UnsafeMutablePointer<Float>, batch: Int, inputs: Int, outputs: Int) {
        for r in 0..<batch {
            let yr = y + r * outputs
            yr.update(from: bias, count: outputs)
            let xr = x + r * inputs
            for k in 0..<inputs {
                let xv = xr[k]
                let wk = w + k * outputs
                for j in 0..<outputs { yr[j] += xv * wk[j] }
            }
        }
    }

    /// dw[i×o] += xᵀ · dy, dbias[o] += Σ rows of dy.
    static func linearWeightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                     _ dbias: UnsafeMutablePointer<Float>, batch: Int, inputs: Int, outputs: Int) {
        for r in 0..<batch {
            let dyr = dy + r * outputs
            for j in 0..<outputs { dbias[j] += dyr[j] }
            let xr = x + r * inputs
            for k in 0..<inputs {
                let xv = xr[k]
                let dwk = dw + k * outputs
                for j in 0..<outputs { dwk[j] += xv * dyr[j] }
            }
        }
    }

    /// dx[b×i] = dy[b×o] · wᵀ.
    static func linearInputGradient(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                    batch: Int, inputs: Int, outputs: Int) {
        for r in 0..<batch {
            let dyr = dy + r * outputs
            for k in 0..<inputs { dx[r * inputs + k] = dot(dyr, w + k * outputs, outputs) }
        }
    }

    /// Σ a[j]·b[j], eight lanes at a time.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while j + 8 <= n {
            acc += ra.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
            j += 8
        }
        var s = acc.sum()
        while j < n {
            s += a[j] * b[j]
            j += 1
        }
        return s
    }
}
