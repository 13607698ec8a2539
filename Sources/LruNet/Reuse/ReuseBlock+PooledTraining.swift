// The reused block in training with synchronised BatchNorm (statistics pooled over the
// processes of a data-parallel run, Distributed/PooledBatchNorm.swift). The group schedule
// cannot be used: it normalises a pointwise group's channels while their statistics are still
// local. This schedule is the wide one with every BatchNorm split in two phases and a sum over
// the processes between them. Forward, per iteration:
//
//   depthwise by input channel -> pooled dw statistics -> folded into the 1x1 weights -> 1x1 by
//   (group, block) on the raw rows -> pooled pw statistics -> normalise + residual + ReLU, shuffled
//
// Backward mirrors it, with pooled sum(dy) and sum(dy*(x - mean)) for both BatchNorms; the 1x1's
// weight gradient reads the raw rows with the BatchNorm folded, as the wide schedule's does.

extension ReuseBlock {
    func forwardPooled(_ input: UnsafeMutablePointer<Float>, group: ProcessGroup, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        let l = shape.rowLength
        let scratch = trainingScratch(ctx)
        let weights = (dw: ctx.cache.fetch(dwWeight), pw: ctx.cache.fetch(pwWeight))
        let fold = wideFold()
        blockInput = input
        var res = UnsafePointer(input)
        for i in 0..<iterations {
            let pass = wideForwardIteration(i, input: res, weights: weights, scratch: scratch, ctx)
            let dwRaw = pass.dwRaw!.base, pwRaw = pass.pwRaw.base, y = pass.y.base
            ctx.timed(.depthwiseBatchNorm) {
                ctx.threading.parallelChunks(planes, minPerThread: 1, pass) { args, worker, range in
                    let r = args.pointee, l = r.depthwise.rowLength
                    let k = r.depthwise.worker(worker)
                    for c in range {
                        k.forward(r.dwRaw! + 2 * c * l, input: r.res + c * l, weight: r.dw + 18 * c, scale: nil, shift: nil)
                    }
                }
                pooledBatchNormStatistics(dwRaw, bn: pass.dwBN, channels: expansion * planes, rowLength: l, memory: pooled,
                                          group: group, threading: ctx.threading)
                foldWide(fold, scale: pooled.scale.pointer, shift: pooled.shift.pointer, weights: weights.pw)
            }
            widePointwiseForward(pass, ctx)
            ctx.timed(.batchNorm) {
                pooledBatchNormStatistics(pwRaw, bn: pass.pwBN, channels: planes, rowLength: l, memory: pooled,
                                          group: group, threading: ctx.threading)
                channelAffine(y, pwRaw, scale: pooled.scale.pointer, shift: pooled.shift.pointer, residual: res,
                              activation: .relu, shuffleOutput: pass.shuffle, channels: planes, rowLength: l, threading: ctx.threading)
            }
            res = UnsafePointer(y)
        }
        return saved[iterations - 1].y.pointer
    }

    func backwardPooled(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool, group: ProcessGroup,
                        _ ctx: RunContext) -> UnsafeMutablePointer<Float>? {
        let l = shape.rowLength
        let scratch = trainingScratch(ctx), pwT = transposedPointwise(), fold = wideFold()
        var src = UnsafePointer(gradOutput), into = gradIn.0, spare = gradIn.1
        for i in stride(from: iterations - 1, through: 0, by: -1) {
            let pass = wideBackwardIteration(i, gradient: src, into: i > 0 || needInputGradient ? into : nil, scratch: scratch,
                                             transposed: pwT, ctx)
            let w = pass.wide!, gy = w.gy.base, gPw = w.gPw.base, gDwNorm = w.gDwNorm.base
            let dwRaw = pass.dwRaw!.base, pwRaw = pass.pwRaw.base
            // Per channel: the gradient at the pre-ReLU sum; then the pw BatchNorm's gradient from
            // pooled sums, and its rows' local sums (not zero: the statistics are pooled) for the
            // folded weight gradient.
            ctx.timed(.batchNorm) {
                ctx.threading.parallelFor(planes, pass) { args, range in
                    let r = args.pointee, w = r.wide!, l = r.depthwise.rowLength
                    for c in range {
                        let at = r.shuffled ? shuffleDestination(c, channels: r.planes) : c
                        rowReLUGradient(w.gy + c * l, r.src + at * l, output: r.mask + at * l, l)
                    }
                }
                pooledBatchNormGradientSums(dy: gy, x: pwRaw, bn: pass.pwBN, channels: planes, rowLength: l, memory: pooled,
                                            group: group, threading: ctx.threading)
                pooledBatchNormBackward(dx: gPw, dy: gy, x: pwRaw, bn: pass.pwBN, channels: planes, rowLength: l,
                                        memory: pooled, threading: ctx.threading)
                ctx.threading.parallelFor(planes, pass) { args, range in
                    let r = args.pointee, l = r.depthwise.rowLength
                    let sums = FoldScratch(r.fold!.base, channels: r.planes, groupWidth: r.groupWidth).sums
                    for c in range { sums[c] = rowSum(r.wide!.gPw + c * l, l) }
                }
                pass.dwReplay.affine(first: 0, count: expansion * planes, scale: fold.scale, shift: fold.shift)
            }
            widePointwiseBackward(pass, ctx)
            // The dw BatchNorm's gradient from pooled sums (in place), then the depthwise
            // gradients per input channel, plus the residual's.
            ctx.timed(.depthwiseBatchNorm) {
                pooledBatchNormGradientSums(dy: gDwNorm, x: dwRaw, bn: pass.dwBN, channels: expansion * planes, rowLength: l,
                                            memory: pooled, group: group, threading: ctx.threading)
                pooledBatchNormBackward(dx: gDwNorm, dy: gDwNorm, x: dwRaw, bn: pass.dwBN, channels: expansion * planes,
                                        rowLength: l, memory: pooled, threading: ctx.threading)
                ctx.threading.parallelChunks(planes, minPerThread: 1, pass) { args, worker, range in
                    let r = args.pointee, w = r.wide!, l = r.depthwise.rowLength
                    let k = r.depthwise.worker(worker)
                    for c in range {
                        k.backward(gradInput: r.gin.map { $0 + c * l }, gradWeight: r.dwGrad + 18 * c, gradOutput: w.gDwNorm + 2 * c * l,
                                   input: r.res + c * l, weight: r.dw + 18 * c, addTo: w.gy + c * l)
                    }
                }
            }
            src = UnsafePointer(into)
            swap(&into, &spare)
        }
        return needInputGradient ? UnsafeMutablePointer(mutating: src) : nil
    }
}
