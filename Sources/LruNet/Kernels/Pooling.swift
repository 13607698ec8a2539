// Max and average pooling over CNHW planes (one plane per (channel, image)).

/// Max pooling with implicit -infinity padding, as PyTorch. When `argmax` is given, stores the
/// winning input index within the plane for the backward pass (first maximum wins, like PyTorch).
func maxPoolForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                    argmax: UnsafeMutablePointer<Int32>?,
                    planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    let ho = g.outputHeight(height), wo = g.outputWidth(width)
    if argmax == nil && g.kernelH == 3 && g.kernelW == 3 && g.stride == 2 && g.padding == 1 {
        let pastRight = maxPoolPastRight(width: width)
        threading.parallelFor(planes, minPerThread: 16, (out, input, height, width, ho, wo, pastRight)) { args, range in
            let (out, input, height, width, ho, wo, pastRight) = args.pointee
            if width <= 16 {
                for p in range {
                    maxPool3x3s2Narrow(out + p * ho * wo, input + p * height * width, height: height, width: width,
                                       ho: ho, wo: wo, pastRight: pastRight)
                }
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: width + 2) { row in
                for p in range {
                    maxPool3x3s2(out + p * ho * wo, input + p * height * width, height: height, width: width,
                                 ho: ho, wo: wo, row: row.baseAddress!)
                }
            }
        }
        return
    }
    if let argmax, g.kernelH == 3 && g.kernelW == 3 && g.stride == 2 && g.padding == 1 {
        threading.parallelFor(planes, minPerThread: 16, (out, input, argmax, height, width, ho, wo)) { args, range in
            let (out, input, argmax, height, width, ho, wo) = args.pointee
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * maxPoolArgmaxRowCount(wo: wo) + 8) { rows in
                for p in range {
                    maxPool3x3s2Argmax(out + p * ho * wo, argmax + p * ho * wo, input + p * height * width,
                                       height: height, width: width, ho: ho, wo: wo, rows: rows.baseAddress!)
                }
            }
        }
        return
    }
    threading.parallelFor(planes, minPerThread: 16, (out, input, argmax, height, width, g, ho, wo)) { args, range in
        let (out, input, argmax, height, width, g, ho, wo) = args.pointee
        for p in range {
            let src = input + p * height * width, dst = out + p * ho * wo
            let idx = argmax.map { $0 + p * ho * wo }
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    var best = -Float.infinity, at = y0 * width + x0
                    for y in y0..<y1 {
                        for x in x0..<x1 where src[y * width + x] > best || src[y * width + x].isNaN {
                            best = src[y * width + x]; at = y * width + x
                        }
                    }
                    dst[oy * wo + ox] = best
                    idx?[oy * wo + ox] = Int32(at)
                }
            }
        }
    }
}

/// For ``maxPool3x3s2Narrow(_:_:height:width:ho:wo:pastRight:)``: the lanes whose x = 2ox+1 is
/// padding. Built once per call, since building a mask goes lane by lane.
func maxPoolPastRight(width: Int) -> SIMDMask<SIMD8<Int32>> {
    SIMD8<Float>(1, 3, 5, 7, 9, 11, 13, 15) .>= SIMD8(repeating: Float(width))
}

/// The larger of two values, NaN if either is (PyTorch's max pooling propagates NaN).
/// `b > a` and `b.isNaN` never both hold, so `!=` is their "or" without a branch.
@inline(__always) private func maxNaN(_ a: Float, _ b: Float) -> Float { (b > a) != b.isNaN ? b : a }

/// LruNet's pooling (3x3, stride 2, padding 1) on one plane, without argmax, in two passes
/// per output row that LLVM vectorises: the vertical maximum of the (up to) three input rows
/// into `t[1...w]`, then `out[ox] = max(t[2ox], t[2ox+1], t[2ox+2])`. The edges are clamped
/// (`t[0] = t[1]`, `t[w+1] = t[w]`) instead of padded: repeating an edge value leaves a maximum
/// unchanged, and the loops stay free of branches and bounds. `t` holds `w + 2` floats.
@inline(__always)
private func maxPool3x3s2(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, height h: Int, width w: Int,
                          ho: Int, wo: Int, row t: UnsafeMutablePointer<Float>) {
    for oy in 0..<ho {
        let y = 2 * oy, r1 = src + y * w
        let r0 = y > 0 ? r1 - w : r1, r2 = y + 1 < h ? r1 + w : r1
        for x in 0..<w { t[1 + x] = maxNaN(maxNaN(r0[x], r1[x]), r2[x]) }
        t[0] = t[1]; t[w + 1] = t[w]
        let d = dst + oy * wo
        for ox in 0..<wo { d[ox] = maxNaN(maxNaN(t[2 * ox], t[2 * ox + 1]), t[2 * ox + 2]) }
    }
}

/// The same for planes at most 16 wide (all of LruNet's), in explicit SIMD (LLVM leaves loops
/// of 7 or 14 scalar): one output row per step, the vertical maximum of its three input rows
/// as two vectors, then their even lanes (x = 2ox), odd lanes (2ox+1) and odd lanes moved up
/// one (2ox-1). Reads 16 floats from each row start (the input buffer's slack covers the
/// last row); writes a whole vector only where it stays inside the plane, since the next
/// plane may be another thread's.
@inline(__always)
func maxPool3x3s2Narrow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, height h: Int, width w: Int,
                                ho: Int, wo: Int, pastRight: SIMDMask<SIMD8<Int32>>) {
    @inline(__always) func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: (b .> a) .| (b .!= b)) }
    for oy in 0..<ho {
        let y = 2 * oy, r1 = src + y * w
        let r0 = y > 0 ? r1 - w : r1, r2 = y + 1 < h ? r1 + w : r1
        let lo = vmax(vmax(load8(r0), load8(r1)), load8(r2))
        let hi = vmax(vmax(load8(r0 + 8), load8(r1 + 8)), load8(r2 + 8))
        let even = SIMD8(lo[0], lo[2], lo[4], lo[6], hi[0], hi[2], hi[4], hi[6])
        let odd = SIMD8(lo[1], lo[3], lo[5], lo[7], hi[1], hi[3], hi[5], hi[7])
        let before = SIMD8(lo[0], lo[1], lo[3], lo[5], lo[7], hi[1], hi[3], hi[5])    // x = 2ox-1, lane 0 clamped
        let m = vmax(vmax(before, even), odd.replacing(with: even, where: pastRight))
        let d = dst + oy * wo
        if oy * wo + 8 <= ho * wo { store8(m, d) } else { for x in 0..<wo { d[x] = m[x] } }
    }
}

/// LruNet's pooling (3x3, stride 2, padding 1) on one plane, with argmax, 8 outputs at a time.
/// Scalar, the running maximum is one long chain of compare-and-select (a sixth of an lru1
/// training step). Here each input row is copied into `t` with -infinity for the padding at
/// x = -1 and x >= w, and the three taps of 8 outputs are its even lanes (x = 2ox-1), odd
/// lanes (2ox) and even lanes one further (2ox+1). Taps are taken in PyTorch's order (rows,
/// then columns, ascending) with its rule `v > best || isnan(v)`, so the first maximum wins
/// and NaN propagates; padding is never taken. `t` holds 3 x ``maxPoolArgmaxRowCount(wo:)`` + 8 floats.
@inline(__always)
private func maxPool3x3s2Argmax(_ dst: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<Int32>,
                                _ src: UnsafePointer<Float>, height h: Int, width w: Int, ho: Int, wo: Int,
                                rows t: UnsafeMutablePointer<Float>) {
    let padded = maxPoolArgmaxRowCount(wo: wo)
    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    for oy in 0..<ho {
        let y0 = max(2 * oy - 1, 0), y1 = min(2 * oy + 1, h - 1)
        for y in y0...y1 {                       // the window's rows, padded
            let r = t + (y - y0) * padded
            let minusInfinity = SIMD8<Float>(repeating: -.infinity)
            r[0] = -.infinity
            copyFloats(r + 1, src + y * w, w)
            var x = 1 + w
            while x < padded { store8(minusInfinity, r + x); x += 8 }   // may run into the next row (written after) or the slack
        }
        var ox0 = 0
        while ox0 < wo {
            // x of each lane's left tap, and its first valid tap's index (PyTorch's start value).
            let xLeft = 2 &* (SIMD8(repeating: Int32(ox0)) &+ lanes) &- 1
            var best = SIMD8<Float>(repeating: -.infinity)
            // max(xLeft, 0) as bit operations: `replacing(with: 0, where: xLeft .< 0)` compiled to a
            // lane-by-lane loop through the stack, half this function's time.
            var at = SIMD8(repeating: Int32(y0 * w)) &+ (xLeft & ~(xLeft &>> 31))
            @inline(__always) func tap(_ v: SIMD8<Float>, _ index: SIMD8<Int32>) {
                let take = (v .> best) .| (v .!= v)
                best.replace(with: v, where: take)
                at.replace(with: index, where: take)
            }
            for y in y0...y1 {
                let r = t + (y - y0) * padded + 2 * ox0
                let a = load8(r), b = load8(r + 8), c = load8(r + 2), d = load8(r + 10)
                let base = SIMD8(repeating: Int32(y * w)) &+ xLeft
                tap(SIMD8(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6]), base)
                tap(SIMD8(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7]), base &+ 1)
                tap(SIMD8(c[0], c[2], c[4], c[6], d[0], d[2], d[4], d[6]), base &+ 2)
            }
            let n = min(8, wo - ox0)
            for l in 0..<n { dst[oy * wo + ox0 + l] = best[l]; idx[oy * wo + ox0 + l] = at[l] }
            ox0 += 8
        }
    }
}

/// Floats of one padded row for ``maxPool3x3s2Argmax``: every vector a block of 8 outputs reads.
func maxPoolArgmaxRowCount(wo: Int) -> Int { 2 * ((wo + 7) & ~7) + 16 }

/// Routes each output gradient to the input its maximum came from (gradInput is overwritten).
func maxPoolBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                     argmax: UnsafePointer<Int32>, planes: Int, inputPlane: Int, outputPlane: Int,
                     threading: Threading) {
    threading.parallelFor(planes, minPerThread: 16, (gradInput, gradOutput, argmax, inputPlane, outputPlane)) { args, range in
        let (gradInput, gradOutput, argmax, inputPlane, outputPlane) = args.pointee
        for p in range {
            let gi = gradInput + p * inputPlane, go = gradOutput + p * outputPlane, idx = argmax + p * outputPlane
            gi.update(repeating: 0, count: inputPlane)
            for i in 0..<outputPlane { gi[Int(idx[i])] += go[i] }
        }
    }
}

/// Average pooling, `count_include_pad=True` (PyTorch's default): divides by the window area.
func avgPoolForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                    planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    let ho = g.outputHeight(height), wo = g.outputWidth(width)
    let inv = 1 / Float(g.kernelH * g.kernelW)
    threading.parallelFor(planes, minPerThread: 64, (out, input, height, width, g, ho, wo, inv)) { args, range in
        let (out, input, height, width, g, ho, wo, inv) = args.pointee
        for p in range {
            let src = input + p * height * width, dst = out + p * ho * wo
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    var s: Float = 0
                    for y in y0..<y1 { for x in x0..<x1 { s += src[y * width + x] } }
                    dst[oy * wo + ox] = s * inv
                }
            }
        }
    }
}

func avgPoolBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                     planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    let ho = g.outputHeight(height), wo = g.outputWidth(width)
    let inv = 1 / Float(g.kernelH * g.kernelW)
    threading.parallelFor(planes, minPerThread: 64, (gradInput, gradOutput, height, width, g, ho, wo, inv)) { args, range in
        let (gradInput, gradOutput, height, width, g, ho, wo, inv) = args.pointee
        for p in range {
            let gi = gradInput + p * height * width, go = gradOutput + p * ho * wo
            gi.update(repeating: 0, count: height * width)
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    let v = go[oy * wo + ox] * inv
                    for y in y0..<y1 { for x in x0..<x1 { gi[y * width + x] += v } }
                }
            }
        }
    }
}
