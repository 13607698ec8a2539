import CLruNetKernels

// Training's depthwise 3x3 + BatchNorm, one input channel at a time (the per-channel kernels
// are C: lru_dw3_forward_bn and lru_dw3_backward_bn in Sources/CLruNetKernels/body_depthwise.h).
//
// A worker computes one input channel's output rows for the whole batch (about 200 KB for
// lru10 at batch 128), and while they are still in its L2 takes the batch statistics and
// writes the normalised rows. (The reused block's schedules write only the raw rows and fold
// the normalisation into their 1x1, ReuseBlock+Training.swift; the whole-layer forms below are
// the library's layer kernels, which the tests and the CI performance probe use.)
// Backward turns the gradient at the normalised rows into the gradient at the raw rows in the
// worker's scratch, then runs the depthwise backward from there. BatchNorm runs the same row
// functions as the layer kernels.

/// Reserves the fused kernels' scratch (lane masks, tall planes and rows for every worker) and
/// writes the masks. Call before the parallel region.
func depthwiseBatchNormScratch(_ scratch: Scratch, multiplier: Int, batch: Int, height: Int, width: Int,
                               threads: Int) -> UnsafeMutablePointer<Float> {
    let s = scratch.reserve(depthwise3x3ScratchCount(height: height, width: width, batch: batch, threads: threads,
                                                     rowsPerWorker: multiplier * batch * height * width))
    lru_dw3_prepare(s, height, width, batch)
    return s
}

extension Depthwise3x3Worker {
    /// One input channel of ``depthwiseBatchNormTrainForward``: its `mult` raw output rows into
    /// `raw` and normalised ones into `out` (the first of each), BatchNorm channels `o ..< o + mult`.
    @inline(__always)
    func forwardBatchNorm(_ out: UnsafeMutablePointer<Float>, raw: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bn: BatchNormTraining, firstOutput o: Int) {
        withUnsafePointer(to: self) { k in withUnsafePointer(to: bn) { lru_dw3_forward_bn(k, out, raw, input, weight, $0, o) } }
    }

    /// One input channel of ``depthwiseBatchNormBackward``.
    @inline(__always)
    func backwardBatchNorm(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                           bn: BatchNormGradient, gradOutput: UnsafePointer<Float>, raw: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>, addTo: UnsafePointer<Float>?,
                           firstOutput o: Int) {
        withUnsafePointer(to: self) { k in withUnsafePointer(to: bn) {
            lru_dw3_backward_bn(k, gradInput, gradWeight, $0, gradOutput, raw, input, weight, addTo, o)
        } }
    }
}

/// `out = BN(raw)`, `raw = depthwise3x3(input)` in training mode: batch statistics saved in
/// `bn`, running statistics updated. out, raw: [C*mult][N][H][W]; input: [C][N][H][W]; weight: [C*mult][9].
/// (The reuse block calls the per-channel methods above group by group; these whole-layer
/// forms are what the tests check and the CI performance probe times.)
package func depthwiseBatchNormTrainForward(_ out: UnsafeMutablePointer<Float>, raw: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                                    _ weight: UnsafePointer<Float>, bn: BatchNormTraining,
                                    channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                                    scratch: Scratch, threading: Threading) {
    let s = depthwiseBatchNormScratch(scratch, multiplier: mult, batch: batch, height: h, width: w, threads: threading.threads)
    let pass = DepthwiseBatchNormPass(out: Rows(out), raw: Rows(raw), input: ConstRows(input), weight: ConstRows(weight), bn: bn,
                                      planes: DepthwisePlanes(multiplier: mult, batch: batch, height: h, width: w,
                                                              threads: threading.threads, scratch: Rows(s)))
    threading.parallelChunks(channels, minPerThread: 1, pass) { args, worker, range in
        let r = args.pointee, n = r.planes.rowLength, mult = r.planes.multiplier
        let k = r.planes.worker(worker)
        for c in range {
            let o = c * mult
            k.forwardBatchNorm(r.out + o * n, raw: r.raw + o * n, input: r.input + c * n, weight: r.weight + o * 9,
                               bn: r.bn, firstOutput: o)
        }
    }
}

/// Gradients of ``depthwiseBatchNormTrainForward``, from the gradient at its output
/// (`gradOutput`, [C*mult][N][H][W]) and the raw rows it kept. The BatchNorm and depthwise
/// weight gradients accumulate; `gradInput` is overwritten, plus `addToInput` when given (the
/// residual path's gradient).
package func depthwiseBatchNormBackward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                                bn: BatchNormGradient, gradOutput: UnsafePointer<Float>, raw: UnsafePointer<Float>,
                                input: UnsafePointer<Float>, weight: UnsafePointer<Float>, addToInput: UnsafePointer<Float>?,
                                channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                                scratch: Scratch, threading: Threading) {
    let s = depthwiseBatchNormScratch(scratch, multiplier: mult, batch: batch, height: h, width: w, threads: threading.threads)
    let pass = DepthwiseBatchNormGradientPass(gradInput: gradInput.map(Rows.init), gradWeight: Rows(gradWeight), bn: bn,
                                              gradOutput: ConstRows(gradOutput), raw: ConstRows(raw), input: ConstRows(input),
                                              weight: ConstRows(weight), addToInput: addToInput.map(ConstRows.init),
                                              planes: DepthwisePlanes(multiplier: mult, batch: batch, height: h, width: w,
                                                                      threads: threading.threads, scratch: Rows(s)))
    threading.parallelChunks(channels, minPerThread: 1, pass) { args, worker, range in
        let r = args.pointee, n = r.planes.rowLength, mult = r.planes.multiplier
        let k = r.planes.worker(worker)
        for c in range {
            let o = c * mult
            k.backwardBatchNorm(gradInput: r.gradInput.map { $0 + c * n }, gradWeight: r.gradWeight + o * 9, bn: r.bn,
                                gradOutput: r.gradOutput + o * n, raw: r.raw + o * n, input: r.input + c * n,
                                weight: r.weight + o * 9, addTo: r.addToInput.map { $0 + c * n }, firstOutput: o)
        }
    }
}

/// Each thread its own input channels: their output rows, and their channels' statistics in `bn`.
private struct DepthwiseBatchNormPass: Sendable {
    let out: Rows, raw: Rows, input: ConstRows, weight: ConstRows
    let bn: BatchNormTraining
    let planes: DepthwisePlanes
}

/// Each thread its own input channels: their gradient rows, weight and BatchNorm gradients.
private struct DepthwiseBatchNormGradientPass: Sendable {
    let gradInput: Rows?, gradWeight: Rows
    let bn: BatchNormGradient
    let gradOutput: ConstRows, raw: ConstRows, input: ConstRows, weight: ConstRows, addToInput: ConstRows?
    let planes: DepthwisePlanes
}
