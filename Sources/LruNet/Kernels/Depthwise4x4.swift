// The 3x3 depthwise conv on 4x4 planes (LruNet's stages 3 and 4), in registers.
//
// A 4x4 plane is two 8-float vectors, rows (0, 1) and rows (2, 3), one row per
// 128-bit lane. Each tap of an output vector is then a view of the plane: a
// row shift is a load at another offset (or one row loaded into both lanes),
// a column shift a permute inside each lane. The views never read outside the
// image; the values they shift in at an edge are junk from the image itself,
// and the taps that would read them are zero in that lane (edge-masked tap
// vectors, made once per channel). So an image needs no tall plane, no lane
// masks and no copy: 5 loads, 10 permutes and 18 FMAs per output plane, where
// the tall-plane sweep spends 22 FMAs, 24 loads and a copy.
//
// Literal zeros shifted into the views made LLVM track the known-zero lanes and
// split the FMAs into 128-bit and scalar pieces (2.4x slower); masked taps keep
// every lane of every vector op alike.

@inline(__always) private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

/// In each row (128-bit lane) the value at x-1; lane x = 0 is junk.
@inline(__always) func fromLeft4(_ v: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8(v[0], v[0], v[1], v[2], v[4], v[4], v[5], v[6])
}
/// In each row the value at x+1; lane x = 3 is junk.
@inline(__always) func fromRight4(_ v: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8(v[1], v[2], v[3], v[3], v[5], v[6], v[7], v[7])
}

/// One row of taps (kx = 0, 1, 2) as vectors, each zero in the lanes where it would read past the plane.
struct TapRow4x4 {
    let left: SIMD8<Float>, centre: SIMD8<Float>, right: SIMD8<Float>

    @inline(__always) init(_ w: (Float, Float, Float), rows: SIMD8<Float>) {
        let notLeft = SIMD8<Float>(0, 1, 1, 1, 0, 1, 1, 1), notRight = SIMD8<Float>(1, 1, 1, 0, 1, 1, 1, 0)
        left = SIMD8(repeating: w.0) * (rows * notLeft)
        centre = SIMD8(repeating: w.1) * rows
        right = SIMD8(repeating: w.2) * (rows * notRight)
    }
}

/// The nine taps of one output channel for both output vectors of a 4x4 plane, scaled (a folded
/// BN) and edge-masked. Output rows (0, 1) have no row above row 0; rows (2, 3) none below row 3.
struct Taps4x4 {
    let top01: TapRow4x4, top23: TapRow4x4, middle: TapRow4x4, bottom01: TapRow4x4, bottom23: TapRow4x4

    /// `scale * weight[t]` for t in 0..<9 (row-major ky, kx); `reversed` mirrors the kernel
    /// (tap t reads weight[8 - t]), which turns the forward conv into its input gradient.
    @inline(__always) init(_ w: UnsafePointer<Float>, scale: Float = 1, reversed: Bool = false) {
        @inline(__always) func tap(_ t: Int) -> Float { scale * w[reversed ? 8 - t : t] }
        let all = SIMD8<Float>(repeating: 1), low = SIMD8<Float>(1, 1, 1, 1, 0, 0, 0, 0), high = all - low
        let top = (tap(0), tap(1), tap(2)), bottom = (tap(6), tap(7), tap(8))
        top01 = TapRow4x4(top, rows: high); top23 = TapRow4x4(top, rows: all)
        middle = TapRow4x4((tap(3), tap(4), tap(5)), rows: all)
        bottom01 = TapRow4x4(bottom, rows: all); bottom23 = TapRow4x4(bottom, rows: low)
    }
}

/// One image's five row views: rows (r-1, r, r+1) for output rows (0, 1) are (above, r01, inner),
/// for output rows (2, 3) (inner, r23, below).
struct Plane4x4 {
    let above: SIMD8<Float>, r01: SIMD8<Float>, inner: SIMD8<Float>, r23: SIMD8<Float>, below: SIMD8<Float>

    @inline(__always) init(_ p: UnsafePointer<Float>) {
        let row0 = load4(p), row3 = load4(p + 12)
        above = SIMD8(lowHalf: row0, highHalf: row0)     // low lane junk (masked): rows (-1, 0)
        r01 = load8(p); inner = load8(p + 4); r23 = load8(p + 8)
        below = SIMD8(lowHalf: row3, highHalf: row3)     // high lane junk (masked): rows (3, 4)
    }
}

/// `sum over ky of taps[ky] * views[ky]`, for one column shift of the views.
@inline(__always)
private func column(_ t0: SIMD8<Float>, _ v0: SIMD8<Float>, _ t1: SIMD8<Float>, _ v1: SIMD8<Float>,
                    _ t2: SIMD8<Float>, _ v2: SIMD8<Float>) -> SIMD8<Float> {
    (t0 * v0).addingProduct(t1, v1).addingProduct(t2, v2)
}

/// 3x3 conv (padding 1) of one 4x4 plane, plus `seeds` (one per output vector). The three
/// columns sum separately: one chain of nine FMAs per output would leave the core waiting on
/// FMA latency.
@inline(__always)
func conv4x4(_ p: Plane4x4, _ t: Taps4x4, seeds: (SIMD8<Float>, SIMD8<Float>)) -> (SIMD8<Float>, SIMD8<Float>) {
    let aL = fromLeft4(p.above), r01L = fromLeft4(p.r01), inL = fromLeft4(p.inner), r23L = fromLeft4(p.r23), beL = fromLeft4(p.below)
    let aR = fromRight4(p.above), r01R = fromRight4(p.r01), inR = fromRight4(p.inner), r23R = fromRight4(p.r23), beR = fromRight4(p.below)
    let c0 = column(t.top01.centre, p.above, t.middle.centre, p.r01, t.bottom01.centre, p.inner)
    let l0 = column(t.top01.left, aL, t.middle.left, r01L, t.bottom01.left, inL)
    let q0 = column(t.top01.right, aR, t.middle.right, r01R, t.bottom01.right, inR)
    let c1 = column(t.top23.centre, p.inner, t.middle.centre, p.r23, t.bottom23.centre, p.below)
    let l1 = column(t.top23.left, inL, t.middle.left, r23L, t.bottom23.left, beL)
    let q1 = column(t.top23.right, inR, t.middle.right, r23R, t.bottom23.right, beR)
    return (seeds.0 + c0 + (l0 + q0), seeds.1 + c1 + (l1 + q1))
}

/// `dst` = conv of `n` consecutive 4x4 images in `src` with one output channel's taps, plus `shift`.
@inline(__always)
func depthwise4x4Images(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, images n: Int,
                        _ taps: Taps4x4, shift: Float) {
    let seed = SIMD8(repeating: shift)
    for i in 0..<n {
        let (o0, o1) = conv4x4(Plane4x4(src + 16 * i), taps, seeds: (seed, seed))
        store8(o0, dst + 16 * i); store8(o1, dst + 16 * i + 8)
    }
}

// Training: the same views give the two gradients.
//   dIn = the conv of the output gradient G with the mirrored kernel (same edge masks);
//   dW[t] = sum over images of G0 * view0[t] + G1 * view1[t], with G's two vectors (output
//   rows (0, 1) and (2, 3)) zeroed in the lanes where tap t would read past the plane: the top
//   row's taps for output row 0, the bottom row's for row 3 (here, on G) and the first and last
//   columns (on the nine sums, once at the end).

extension Depthwise3x3Worker {
    /// ``forward(_:input:weight:scale:shift:)`` on 4x4 planes.
    @inline(__always)
    func forward4x4(_ dst: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                    scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?) {
        for m in 0..<mult {
            depthwise4x4Images(dst + m * batch * 16, input, images: batch, Taps4x4(weight + 9 * m, scale: scale?[m] ?? 1),
                               shift: shift?[m] ?? 0)
        }
    }

    /// ``backward(gradInput:gradWeight:gradOutput:input:weight:addTo:)`` on 4x4 planes.
    @inline(__always)
    func backward4x4(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                     gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                     addTo: UnsafePointer<Float>?) {
        let low = SIMD8<Float>(1, 1, 1, 1, 0, 0, 0, 0), high = SIMD8<Float>(repeating: 1) - low
        for m in 0..<mult {
            let g = gradOutput + m * batch * 16
            var s0 = SIMD8<Float>(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0
            for i in 0..<batch {
                let p = Plane4x4(input + 16 * i)
                let g0 = load8(g + 16 * i), g1 = load8(g + 16 * i + 8), g0top = g0 * high, g1bottom = g1 * low
                s1 = s1.addingProduct(g0top, p.above).addingProduct(g1, p.inner)
                s4 = s4.addingProduct(g0, p.r01).addingProduct(g1, p.r23)
                s7 = s7.addingProduct(g0, p.inner).addingProduct(g1bottom, p.below)
                let inL = fromLeft4(p.inner), inR = fromRight4(p.inner)
                s0 = s0.addingProduct(g0top, fromLeft4(p.above)).addingProduct(g1, inL)
                s3 = s3.addingProduct(g0, fromLeft4(p.r01)).addingProduct(g1, fromLeft4(p.r23))
                s6 = s6.addingProduct(g0, inL).addingProduct(g1bottom, fromLeft4(p.below))
                s2 = s2.addingProduct(g0top, fromRight4(p.above)).addingProduct(g1, inR)
                s5 = s5.addingProduct(g0, fromRight4(p.r01)).addingProduct(g1, fromRight4(p.r23))
                s8 = s8.addingProduct(g0, inR).addingProduct(g1bottom, fromRight4(p.below))
            }
            let notLeft = SIMD8<Float>(0, 1, 1, 1, 0, 1, 1, 1), notRight = SIMD8<Float>(1, 1, 1, 0, 1, 1, 1, 0)
            let gw = gradWeight + 9 * m
            gw[0] += (s0 * notLeft).sum(); gw[1] += s1.sum(); gw[2] += (s2 * notRight).sum()
            gw[3] += (s3 * notLeft).sum(); gw[4] += s4.sum(); gw[5] += (s5 * notRight).sum()
            gw[6] += (s6 * notLeft).sum(); gw[7] += s7.sum(); gw[8] += (s8 * notRight).sum()
        }
        guard let gradInput else { return }
        for m in 0..<mult {
            let g = gradOutput + m * batch * 16, taps = Taps4x4(weight + 9 * m, reversed: true)
            // Output m adds to what the outputs before it left, the first to the residual's gradient.
            let base = m > 0 ? UnsafePointer(gradInput) : addTo
            for i in 0..<batch {
                let seeds = base.map { (load8($0 + 16 * i), load8($0 + 16 * i + 8)) } ?? (SIMD8(), SIMD8())
                let (d0, d1) = conv4x4(Plane4x4(g + 16 * i), taps, seeds: seeds)
                store8(d0, gradInput + 16 * i); store8(d1, gradInput + 16 * i + 8)
            }
        }
    }
}
