/// The learner's numeric kernels on row-major `Float` buffers: the three products of a dense
/// layer, written so that the inner loops run over contiguous memory (the compiler vectorizes
/// them) and reductions use explicit 8-wide SIMD accumulators. One thread, fixed order: the same
/// inputs give the same bits.
///
/// Measured against the alternatives before choosing (BENCHMARKS.md, "PPO update"): this machine
/// has no tuned BLAS (Debian's reference `libblas` only), and for layers of 64 units these loops
/// keep the data in L1.
enum Kernels {
    /// y[b×o] = x[b×i] · w[i×o] + bias[o]. Eight outputs at a time in a register, over all inputs.
    static func linear(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                       _ y: UnsafeMutablePointer<Float>, batch: Int, inputs: Int, outputs: Int) {
        let rw = UnsafeRawPointer(w), rb = UnsafeRawPointer(bias), ry = UnsafeMutableRawPointer(y)
        let wide = outputs & ~7
        for r in 0..<batch {
            let xr = x + r * inputs
            var j = 0
            while j < wide {
                var acc = rb.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
                for k in 0..<inputs {
                    acc += SIMD8(repeating: xr[k]) * rw.loadUnaligned(fromByteOffset: 4 * (k * outputs + j), as: SIMD8<Float>.self)
                }
                ry.storeBytes(of: acc, toByteOffset: 4 * (r * outputs + j), as: SIMD8<Float>.self)
                j += 8
            }
            while j < outputs {
                var acc = bias[j]
                for k in 0..<inputs { acc += xr[k] * w[k * outputs + j] }
                y[r * outputs + j] = acc
                j += 1
            }
        }
    }

    /// dw[i×o] += xᵀ · dy, dbias[o] += Σ rows of dy. Eight outputs at a time in a register, over all rows.
    static func linearWeightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                     _ dbias: UnsafeMutablePointer<Float>, batch: Int, inputs: Int, outputs: Int) {
        let rdy = UnsafeRawPointer(dy), rdw = UnsafeMutableRawPointer(dw), rdb = UnsafeMutableRawPointer(dbias)
        let wide = outputs & ~7
        var j = 0
        while j < wide {
            var sum = rdb.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
            for r in 0..<batch { sum += rdy.loadUnaligned(fromByteOffset: 4 * (r * outputs + j), as: SIMD8<Float>.self) }
            rdb.storeBytes(of: sum, toByteOffset: 4 * j, as: SIMD8<Float>.self)
            for k in 0..<inputs {
                var acc = rdw.loadUnaligned(fromByteOffset: 4 * (k * outputs + j), as: SIMD8<Float>.self)
                for r in 0..<batch {
                    acc += SIMD8(repeating: x[r * inputs + k]) * rdy.loadUnaligned(fromByteOffset: 4 * (r * outputs + j), as: SIMD8<Float>.self)
                }
                rdw.storeBytes(of: acc, toByteOffset: 4 * (k * outputs + j), as: SIMD8<Float>.self)
            }
            j += 8
        }
        while j < outputs {
            for r in 0..<batch { dbias[j] += dy[r * outputs + j] }
            for k in 0..<inputs {
                var acc = dw[k * outputs + j]
                for r in 0..<batch { acc += x[r * inputs + k] * dy[r * outputs + j] }
                dw[k * outputs + j] = acc
            }
            j += 1
        }
    }

    /// dx[b×i] = dy[b×o] · wᵀ: the forward product against a transposed copy of w (made in
    /// `scratch`, at least i×o), so that it runs eight inputs at a time without horizontal sums.
    static func linearInputGradient(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                    batch: Int, inputs: Int, outputs: Int, scratch: UnsafeMutablePointer<Float>) {
        for k in 0..<inputs { for j in 0..<outputs { scratch[j * inputs + k] = w[k * outputs + j] } }
        let rw = UnsafeRawPointer(scratch), rx = UnsafeMutableRawPointer(dx)
        let wide = inputs & ~7
        for r in 0..<batch {
            let dyr = dy + r * outputs
            var k = 0
            while k < wide {
                var acc = SIMD8<Float>()
                for j in 0..<outputs {
                    acc += SIMD8(repeating: dyr[j]) * rw.loadUnaligned(fromByteOffset: 4 * (j * inputs + k), as: SIMD8<Float>.self)
                }
                rx.storeBytes(of: acc, toByteOffset: 4 * (r * inputs + k), as: SIMD8<Float>.self)
                k += 8
            }
            while k < inputs {
                dx[r * inputs + k] = dot(dyr, w + k * outputs, outputs)
                k += 1
            }
        }
    }

    /// t[o×i] = wᵀ, for `linearInputGradient(_:transposed:...)` over many calls with the same w.
    static func transpose(_ w: UnsafePointer<Float>, into t: UnsafeMutablePointer<Float>, inputs: Int, outputs: Int) {
        for k in 0..<inputs { for j in 0..<outputs { t[j * inputs + k] = w[k * outputs + j] } }
    }

    /// dx[b×i] = dy[b×o] · wᵀ, given t = wᵀ (o×i, from `transpose`): eight inputs at a time.
    static func linearInputGradient(_ dy: UnsafePointer<Float>, transposed t: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                    batch: Int, inputs: Int, outputs: Int) {
        let rt = UnsafeRawPointer(t), rx = UnsafeMutableRawPointer(dx)
        let wide = inputs & ~7
        for r in 0..<batch {
            let dyr = dy + r * outputs
            var k = 0
            while k < wide {
                var acc = SIMD8<Float>()
                for j in 0..<outputs {
                    acc += SIMD8(repeating: dyr[j]) * rt.loadUnaligned(fromByteOffset: 4 * (j * inputs + k), as: SIMD8<Float>.self)
                }
                rx.storeBytes(of: acc, toByteOffset: 4 * (r * inputs + k), as: SIMD8<Float>.self)
                k += 8
            }
            while k < inputs {
                var acc: Float = 0
                for j in 0..<outputs { acc += dyr[j] * t[j * inputs + k] }
                dx[r * inputs + k] = acc
                k += 1
            }
        }
    }

    /// max(x, 0) of `count` values in place.
    static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for k in 0..<count { x[k] = max(x[k], 0) }
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

    /// tanh of `count` values in place: Eigen's rational approximation (odd degree-13 numerator over
    /// even degree-6 denominator; the input clamped to ±7.905, so the result saturates at
    /// ±(1 - 3e-7)): within 4e-7 absolute and 1e-6 relative of tanh everywhere (TrainKitTests),
    /// eight lanes at a time and an order of magnitude faster than `tanhf`.
    /// Infinite inputs give NaN (an activation that is infinite has already diverged).
    static func tanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var k = 0
        let raw = UnsafeMutableRawPointer(x)
        while k + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: 4 * k, as: SIMD8<Float>.self)
            raw.storeBytes(of: tanh8(v), toByteOffset: 4 * k, as: SIMD8<Float>.self)
            k += 8
        }
        while k < count {
            x[k] = tanh8(SIMD8(repeating: x[k]))[0]
            k += 1
        }
    }

    @inline(__always)
    static func tanh8(_ input: SIMD8<Float>) -> SIMD8<Float> {
        // Clamped to ±b without comparisons (Swift lowers SIMD masks lane by lane): x minus the
        // parts beyond ±b, each relu(v) = (v + |v|) / 2, which is exactly 0 for v < 0; so inside
        // the range x passes unchanged, to the last bit.
        let b = SIMD8<Float>(repeating: 7.905_311_107_635_498)
        let magnitude = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        @inline(__always) func abs8(_ v: SIMD8<Float>) -> SIMD8<Float> {
            unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & magnitude, to: SIMD8<Float>.self)
        }
        let above = input - b, below = -input - b
        let x = input - 0.5 * (above + abs8(above)) + 0.5 * (below + abs8(below))
        let x2 = x * x
        var p = x2 * SIMD8(repeating: -2.760_768_477_423_55e-16) + SIMD8(repeating: 2.000_187_904_824_77e-13)
        p = x2 * p + SIMD8(repeating: -8.604_671_522_137_35e-11)
        p = x2 * p + SIMD8(repeating: 5.122_297_090_371_14e-08)
        p = x2 * p + SIMD8(repeating: 1.485_722_357_179_79e-05)
        p = x2 * p + SIMD8(repeating: 6.372_619_288_754_36e-04)
        p = x2 * p + SIMD8(repeating: 4.893_524_558_917_86e-03)
        p = x * p
        var q = x2 * SIMD8(repeating: 1.198_258_394_667_02e-06) + SIMD8(repeating: 1.185_347_056_866_54e-04)
        q = x2 * q + SIMD8(repeating: 2.268_434_632_439_00e-03)
        q = x2 * q + SIMD8(repeating: 4.893_525_185_543_85e-03)
        return p / q
    }
}
