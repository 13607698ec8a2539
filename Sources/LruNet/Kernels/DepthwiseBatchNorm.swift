// Training's depthwise 3x3 + BatchNorm, fused so that the raw depthwise output never goes
// to memory.
//
// Layer by layer, a training step writes the depthwise output (twice the block's activation),
// reads it back for the batch statistics and the normalisation, keeps it for backward, and
// reads it twice more there (BatchNorm backward, then the depthwise backward's output
// gradient). Here a worker computes one input channel's output rows for the whole batch into
// its own scratch (about 200 KB for lru10 at batch 128: it stays in L2), and
//   forward:  takes the batch statistics there and writes only the normalised rows;
//   backward: computes the rows again from the block input (nine FMAs a value, cheaper than
//             reading them back from memory), turns them into the depthwise output gradient
//             in place, and runs the depthwise backward from them.
// The rows are computed by the same sweep as the forward pass and BatchNorm runs the same
// row functions as the layer-by-layer kernels, so the results are the same bits.

/// Reserves the fused kernels' scratch (lane masks, tall planes and rows for every worker) and
/// writes the masks. Call before the parallel region.
func depthwiseBatchNormScratch(_ scratch: Scratch, multiplier: Int, batch: Int, height: Int, width: Int,
                               threads: Int) -> UnsafeMutablePointer<Float> {
    let s = scratch.reserve(depthwise3x3ScratchCount(height: height, width: width, batch: batch, threads: threads,
                                                     rowsPerWorker: multiplier * batch * height * width))
    _ = TallPlane(height: height, width: width, batch: batch, chunkValues: Depthwise3x3Worker.chunkValues).prepareMasks(in: s)
    return s
}

extension Depthwise3x3Worker {
    /// One input channel of ``depthwiseBatchNormTrainForward``: its `mult` normalised output
    /// rows into `out` (the first one), BatchNorm channels `o ..< o + mult`.
    @inline(__always)
    func forwardBatchNorm(_ out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                          bn: BatchNormTraining, firstOutput o: Int) {
        let l = batch * hw
        forward(rows, input: input, weight: weight, scale: nil, shift: nil)
        for m in 0..<mult { bn.forwardRow(out + m * l, rows + m * l, l, channel: o + m) }
    }

    /// One input channel of ``depthwiseBatchNormBackward``.
    @inline(__always)
    func backwardBatchNorm(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                           bn: BatchNormGradient, gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>, addTo: UnsafePointer<Float>?, firstOutput o: Int) {
        let l = batch * hw
        forward(rows, input: input, weight: weight, scale: nil, shift: nil)      // the raw rows again
        for m in 0..<mult {
            let row = rows + m * l
            bn.backwardRow(row, dy: gradOutput + m * l, x: row, l, channel: o + m)
        }
        backward(gradInput: gradInput, gradWeight: gradWeight, gradOutput: rows, input: input, weight: weight, addTo: addTo)
    }
}

/// `out = BN(depthwise3x3(input))` in training mode: batch statistics saved in `bn`, running
/// statistics updated. out: [C*mult][N][H][W]; input: [C][N][H][W]; weight: [C*mult][9].
/// (The reuse block calls the per-channel methods above group by group; these whole-layer
/// forms are what the tests check and the CI performance probe times.)
func depthwiseBatchNormTrainForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                                    _ weight: UnsafePointer<Float>, bn: BatchNormTraining,
                                    channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                                    scratch: Scratch, threading: Threading) {
    let threads = threading.threads, rowLength = batch * h * w
    let s = depthwiseBatchNormScratch(scratch, multiplier: mult, batch: batch, height: h, width: w, threads: threads)
    threading.parallelChunks(channels, minPerThread: 1,
                             (out, input, weight, bn, mult, batch, h, w, s, threads, rowLength)) { args, worker, range in
        let (out, input, weight, bn, mult, batch, h, w, s, threads, rowLength) = args.pointee
        let k = Depthwise3x3Worker(height: h, width: w, batch: batch, multiplier: mult, threads: threads,
                                   worker: worker, scratch: s)
        for c in range {
            let o = c * mult
            k.forwardBatchNorm(out + o * rowLength, input: input + c * rowLength, weight: weight + o * 9, bn: bn, firstOutput: o)
        }
    }
}

/// Gradients of ``depthwiseBatchNormTrainForward``, from the gradient at its output
/// (`gradOutput`, [C*mult][N][H][W]). The BatchNorm and depthwise weight gradients accumulate;
/// `gradInput` is overwritten, plus `addToInput` when given (the residual path's gradient).
func depthwiseBatchNormBackward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                                bn: BatchNormGradient, gradOutput: UnsafePointer<Float>,
                                input: UnsafePointer<Float>, weight: UnsafePointer<Float>, addToInput: UnsafePointer<Float>?,
                                channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                                scratch: Scratch, threading: Threading) {
    let threads = threading.threads, rowLength = batch * h * w
    let s = depthwiseBatchNormScratch(scratch, multiplier: mult, batch: batch, height: h, width: w, threads: threads)
    threading.parallelChunks(channels, minPerThread: 1,
                             (gradInput, gradWeight, bn, gradOutput, input, weight, addToInput, mult, batch, h, w, s,
                              threads, rowLength)) { args, worker, range in
        let (gradInput, gradWeight, bn, gradOutput, input, weight, addToInput, mult, batch, h, w, s,
             threads, rowLength) = args.pointee
        let k = Depthwise3x3Worker(height: h, width: w, batch: batch, multiplier: mult, threads: threads,
                                   worker: worker, scratch: s)
        for c in range {
            let o = c * mult
            k.backwardBatchNorm(gradInput: gradInput.map { $0 + c * rowLength }, gradWeight: gradWeight + o * 9, bn: bn,
                                gradOutput: gradOutput + o * rowLength, input: input + c * rowLength, weight: weight + o * 9,
                                addTo: addToInput.map { $0 + c * rowLength }, firstOutput: o)
        }
    }
}
