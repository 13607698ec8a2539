// The reuse block's depthwise conv: 3x3, stride 1, padding 1, channel
// multiplier `mult`, in CNHW (channel c's images are contiguous).
//
// Planes here are small (14x14 down to 2x2): loops over one row or one plane
// are too short to vectorise, and copying rows into a bordered plane costs a
// call per row. Instead a chunk of images of one channel is copied, one whole
// image at a time, into a "tall plane": images stacked with one zero row
// before each and after the last, rows at stride W. Output j = row*W + x of the
// chunk reads tall[j + ky*W + kx - 1]; the zero rows give the top and bottom
// padding, and two lane masks (x != 0, x != W-1), the same for every channel,
// blank the taps that would wrap to a neighbouring row. The chunk is then one
// flat sweep of 8-wide SIMD vectors; the separator rows' outputs are dropped.

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// The same pointer, out of the optimiser's sight. The 3x3 loops read p[j-1], p[j] and p[j+1];
/// seeing one base, LLVM rebuilt some of those vectors from overlapping loads with blends and
/// permutes, several instructions for what one unaligned load does. Three bases it cannot
/// relate keep the loads plain (the depthwise backward ran 1.4x faster).
@inline(never) @_optimize(none)
func opaque(_ p: UnsafePointer<Float>) -> UnsafePointer<Float> { p }

/// `count` floats from `src` to `dst` (not overlapping), inline: planes here are 16 to 196
/// floats, where a call to `memmove` costs as much as the copy.
@inline(__always) func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(src + i), dst + i); i += 8 }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// The layout of a chunk of images as one tall plane, and the scratch it needs.
struct TallPlane {
    let height: Int, width: Int
    /// Images per chunk: about 4,000 values, so a chunk stays in L1/L2.
    let images: Int
    /// Rows one image takes, its separator included.
    var rowsPerImage: Int { height + 1 }
    /// 4x4 planes skip the tall plane: they are convolved in registers (Depthwise4x4.swift).
    var square4: Bool { height == 4 && width == 4 }
    /// Flat outputs computed for `n` images (separator rows included), rounded up to whole vectors.
    func flat(_ n: Int) -> Int { (n * rowsPerImage * width + 7) & ~7 }
    /// Floats of one tall buffer: one leading guard vector, the rows, slack for the last taps.
    var bufferCount: Int { 8 + flat(images) + 3 * width + 16 }
    /// Where row 0 of the tall plane starts in its buffer.
    static let origin = 8

    init(height: Int, width: Int, batch: Int, chunkValues: Int = 4096) {
        self.height = height; self.width = width
        images = max(1, min(batch, chunkValues / ((height + 1) * width)))
    }

    /// Copies images `n0 ..< n0+n` of a channel row into the tall plane; separators stay zero.
    @inline(__always)
    func fill(_ tall: UnsafeMutablePointer<Float>, from row: UnsafePointer<Float>, n0: Int, n: Int) {
        let hw = height * width
        for i in 0..<n { copyFloats(tall + (i * rowsPerImage + 1) * width, row + (n0 + i) * hw, hw) }
    }

    /// Zeroes what a full chunk would have past image `n`, up to where a sweep of `flat(n)`
    /// outputs reads: the weight gradient sums over every lane, so a short last chunk must not
    /// see the previous chunk's images there.
    @inline(__always)
    func clearPast(_ tall: UnsafeMutablePointer<Float>, images n: Int) {
        let from = (n * rowsPerImage + 1) * width, to = flat(n) + 3 * width + 8
        if to > from { (tall + from).update(repeating: 0, count: to - from) }
    }

    /// Scratch layout: the two lane masks, then three buffers per worker. Writes the masks
    /// (left[j] = (x != 0), right[j] = (x != W-1), x = j mod W) and returns them.
    func prepareMasks(in scratch: UnsafeMutablePointer<Float>) -> (left: UnsafePointer<Float>, right: UnsafePointer<Float>) {
        let left = scratch, right = scratch + bufferCount
        for j in 0..<flat(images) {
            let x = j % width
            left[j] = x != 0 ? 1 : 0
            right[j] = x != width - 1 ? 1 : 0
        }
        return (UnsafePointer(left), UnsafePointer(right))
    }

    /// A worker's three buffers in the scratch.
    func workerBuffers(in scratch: UnsafeMutablePointer<Float>, worker: Int) -> UnsafeMutablePointer<Float> {
        scratch + (2 + 3 * worker) * bufferCount
    }
}

/// acc[j] (+)= left[j]*sum_r a_r*p[j + off_r - 1] + sum_r b_r*p[j + off_r] + right[j]*sum_r c_r*p[j + off_r + 1],
/// with rows off_r = r*W for r = 0, 1, 2. `k` holds (a0, b0, c0, a1, b1, c1, a2, b2, c2).
@inline(__always)
private func sweep3x3(_ acc: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, width w: Int, flat: Int,
                      left: UnsafePointer<Float>, right: UnsafePointer<Float>,
                      _ k: UnsafePointer<Float>, reversed: Bool, accumulate: Bool) {
    @inline(__always) func tap(_ t: Int) -> SIMD8<Float> { SIMD8(repeating: k[reversed ? 8 - t : t]) }
    let a0 = tap(0), b0 = tap(1), c0 = tap(2), a1 = tap(3), b1 = tap(4), c1 = tap(5), a2 = tap(6), b2 = tap(7), c2 = tap(8)
    let pl = opaque(p - 1), pm = opaque(p), pr = opaque(p + 1)
    var j = 0
    while j < flat {
        // addingProduct is one FMA; Swift does not contract `a * b + c` on its own.
        var l = a0 * load8(pl + j), m = b0 * load8(pm + j), r = c0 * load8(pr + j)
        l = l.addingProduct(a1, load8(pl + j + w)); m = m.addingProduct(b1, load8(pm + j + w)); r = r.addingProduct(c1, load8(pr + j + w))
        l = l.addingProduct(a2, load8(pl + j + 2 * w)); m = m.addingProduct(b2, load8(pm + j + 2 * w)); r = r.addingProduct(c2, load8(pr + j + 2 * w))
        if accumulate { m += load8(acc + j) }
        let v = m.addingProduct(load8(left + j), l).addingProduct(load8(right + j), r)
        store8(v, acc + j)
        j += 8
    }
}

/// Scratch floats the 3x3 kernels need: two masks plus three tall buffers per worker, and
/// `rowsPerWorker` more per worker for the fused BatchNorm kernels (DepthwiseBatchNorm.swift).
func depthwise3x3ScratchCount(height: Int, width: Int, batch: Int, threads: Int, rowsPerWorker: Int = 0) -> Int {
    let t = TallPlane(height: height, width: width, batch: batch, chunkValues: Depthwise3x3Worker.chunkValues)
    return 2 * t.bufferCount + threads * (3 * t.bufferCount + rowsPerWorker)
}

/// One worker's part of a 3x3 kernel: its tall buffers, the shared lane masks, and the work on
/// one input channel. Channel c's `mult` output rows (whole batch each) are consecutive, `batch*hw`
/// apart, both in the output tensor and in the fused kernels' row scratch.
struct Depthwise3x3Worker {
    /// Values per chunk of images (see ``TallPlane``): a chunk's planes stay in L1/L2.
    static let chunkValues = 4096
    let tall: TallPlane
    let mult, batch, hw: Int
    let left, right: UnsafePointer<Float>
    /// The input tall plane, the output-gradient tall plane, the accumulator.
    let pin, pout, acc: UnsafeMutablePointer<Float>
    /// This worker's rows in the scratch (fused kernels only).
    let rows: UnsafeMutablePointer<Float>

    init(height h: Int, width w: Int, batch: Int, multiplier: Int, threads: Int, worker: Int,
         scratch: UnsafeMutablePointer<Float>) {
        tall = TallPlane(height: h, width: w, batch: batch, chunkValues: Self.chunkValues)
        mult = multiplier; self.batch = batch; hw = h * w
        let size = tall.bufferCount
        left = UnsafePointer(scratch); right = UnsafePointer(scratch + size)
        let buffer = tall.workerBuffers(in: scratch, worker: worker)
        pin = buffer + TallPlane.origin; pout = buffer + size + TallPlane.origin; acc = buffer + 2 * size
        rows = scratch + (2 + 3 * threads) * size + worker * mult * batch * hw
        if !square4 { buffer.update(repeating: 0, count: 2 * size) }     // separators and guards stay zero
    }

    var square4: Bool { tall.square4 }

    /// Forward of one channel: `dst[m]` = conv of `input` (the channel's row) with `weight[m]`,
    /// times `scale[m]` plus `shift[m]` when given.
    @inline(__always)
    func forward(_ dst: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                 scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?) {
        if square4 { return forward4x4(dst, input: input, weight: weight, scale: scale, shift: shift) }
        let w = tall.width
        var n0 = 0
        while n0 < batch {
            let n = min(tall.images, batch - n0)
            tall.fill(pin, from: input, n0: n0, n: n)
            for m in 0..<mult {
                sweep3x3(acc, pin, width: w, flat: tall.flat(n), left: left, right: right, weight + m * 9,
                         reversed: false, accumulate: false)
                let sc = SIMD8(repeating: scale?[m] ?? 1), sh = SIMD8(repeating: shift?[m] ?? 0)
                let d0 = dst + m * batch * hw + n0 * hw
                for i in 0..<n {
                    let a = acc + i * tall.rowsPerImage * w, d = d0 + i * hw
                    var x = 0
                    while x + 8 <= hw { store8(sh.addingProduct(load8(a + x), sc), d + x); x += 8 }
                    while x < hw { d[x] = a[x] * sc[0] + sh[0]; x += 1 }
                }
            }
            n0 += n
        }
    }

    /// Gradients of one channel from its output-gradient rows `gradOutput[m]`: `gradWeight[m]`
    /// accumulates; `gradInput` (the channel's row) is overwritten, plus `addTo` when given.
    ///
    /// With the output gradient in a tall plane G (same layout as the input's, P):
    ///   dIn  = the forward sweep over G with the kernel reversed (taps mirrored, masks swapped by the reversal)
    ///   dW[ky][kx] = sum_j G[j + W] * P[j + ky*W + kx - 1] * mask_kx[j]   (nine flat dot products; G's
    ///                separator rows blank the junk outputs).
    @inline(__always)
    func backward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                  gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  addTo: UnsafePointer<Float>?) {
        if square4 {
            return backward4x4(gradInput: gradInput, gradWeight: gradWeight, gradOutput: gradOutput, input: input,
                               weight: weight, addTo: addTo)
        }
        let w = tall.width
        var n0 = 0
        while n0 < batch {
            let n = min(tall.images, batch - n0)
            let flat = tall.flat(n)
            tall.fill(pin, from: input, n0: n0, n: n)
            for m in 0..<mult {
                tall.fill(pout, from: gradOutput + m * batch * hw, n0: n0, n: n)
                if n < tall.images { tall.clearPast(pout, images: n) }
                // Weight gradient: nine dot products over the chunk.
                let g = UnsafePointer(pout + w), pl = opaque(pin - 1), pm = opaque(pin), pr = opaque(pin + 1)
                var s0 = SIMD8<Float>(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0
                var j = 0
                while j < flat {
                    let gm = load8(g + j), gl = gm * load8(left + j), gr = gm * load8(right + j)
                    s0 = s0.addingProduct(gl, load8(pl + j)); s1 = s1.addingProduct(gm, load8(pm + j)); s2 = s2.addingProduct(gr, load8(pr + j))
                    s3 = s3.addingProduct(gl, load8(pl + j + w)); s4 = s4.addingProduct(gm, load8(pm + j + w)); s5 = s5.addingProduct(gr, load8(pr + j + w))
                    s6 = s6.addingProduct(gl, load8(pl + j + 2 * w)); s7 = s7.addingProduct(gm, load8(pm + j + 2 * w)); s8 = s8.addingProduct(gr, load8(pr + j + 2 * w))
                    j += 8
                }
                let gw = gradWeight + m * 9
                gw[0] += s0.sum(); gw[1] += s1.sum(); gw[2] += s2.sum()
                gw[3] += s3.sum(); gw[4] += s4.sum(); gw[5] += s5.sum()
                gw[6] += s6.sum(); gw[7] += s7.sum(); gw[8] += s8.sum()
                // Input gradient: dIn[j] = sum w[ky][kx] * G[j + (2-ky)*W + (1-kx)]; reversing the taps
                // gives (row r = 2-ky) w[2-r][2] at -1 (masked left), w[2-r][1] at 0, w[2-r][0] at +1 (masked right).
                if gradInput != nil {
                    sweep3x3(acc, pout, width: w, flat: flat, left: left, right: right, weight + m * 9,
                             reversed: true, accumulate: m > 0)
                }
            }
            if let gradInput {
                let dst = gradInput + n0 * hw
                if let addTo {
                    for i in 0..<n { rowAdd(dst + i * hw, acc + i * tall.rowsPerImage * w, addTo + (n0 + i) * hw, hw) }
                } else {
                    for i in 0..<n { (dst + i * hw).update(from: acc + i * tall.rowsPerImage * w, count: hw) }
                }
            }
            n0 += n
        }
    }
}

/// Same contract as ``depthwiseForward`` for the 3x3/1/1 case.
func depthwise3x3Forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                         _ weight: UnsafePointer<Float>, channels: Int, multiplier mult: Int,
                         batch: Int, height h: Int, width w: Int,
                         scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
                         scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    let tall = TallPlane(height: h, width: w, batch: batch, chunkValues: Depthwise3x3Worker.chunkValues)
    _ = tall.prepareMasks(in: scratch)
    let threads = threading.threads, rowLength = batch * h * w
    threading.parallelChunks(channels, minPerThread: 1,
                             (out, input, weight, mult, batch, h, w, scale, shift, scratch, threads, rowLength)) { args, worker, range in
        let (out, input, weight, mult, batch, h, w, scale, shift, scratch, threads, rowLength) = args.pointee
        let k = Depthwise3x3Worker(height: h, width: w, batch: batch, multiplier: mult, threads: threads,
                                   worker: worker, scratch: scratch)
        for c in range {
            let o = c * mult
            k.forward(out + o * rowLength, input: input + c * rowLength, weight: weight + o * 9,
                      scale: scale.map { $0 + o }, shift: shift.map { $0 + o })
        }
    }
}

/// Gradients of the 3x3/1/1 depthwise conv, same contract as ``depthwiseBackward``.
func depthwise3x3Backward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                          gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                          channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                          addToInput: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    let tall = TallPlane(height: h, width: w, batch: batch, chunkValues: Depthwise3x3Worker.chunkValues)
    _ = tall.prepareMasks(in: scratch)
    let threads = threading.threads, rowLength = batch * h * w
    threading.parallelChunks(channels, minPerThread: 1,
                             (gradInput, gradWeight, gradOutput, input, weight, mult, batch, h, w, addToInput, scratch,
                              threads, rowLength)) { args, worker, range in
        let (gradInput, gradWeight, gradOutput, input, weight, mult, batch, h, w, addToInput, scratch,
             threads, rowLength) = args.pointee
        let k = Depthwise3x3Worker(height: h, width: w, batch: batch, multiplier: mult, threads: threads,
                                   worker: worker, scratch: scratch)
        for c in range {
            let o = c * mult
            k.backward(gradInput: gradInput.map { $0 + c * rowLength }, gradWeight: gradWeight + o * 9,
                       gradOutput: gradOutput + o * rowLength, input: input + c * rowLength, weight: weight + o * 9,
                       addTo: addToInput.map { $0 + c * rowLength })
        }
    }
}
