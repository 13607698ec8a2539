// BatchNorm over CNHW rows: channel c is the contiguous row x[c*L ..< (c+1)*L], L = N*H*W.

/// Inference BatchNorm folded to one multiply-add per value: `scale = gamma / sqrt(var + eps)`,
/// `shift = beta - mean * scale`. Computed per forward pass by the parameter cache.
func batchNormFold(scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>,
                   gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                   mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, channels: Int, eps: Float) {
    // Eight channels at a time: a batch-1 lru10 pass folds 28,800 channels, and scalar
    // square roots and divisions took 6% of it.
    var c = 0
    let e = SIMD8(repeating: eps)
    while c + 8 <= channels {
        let s = load8(gamma + c) / (load8(variance + c) + e).squareRoot()
        store8(s, scale + c)
        store8(load8(beta + c) - load8(mean + c) * s, shift + c)
        c += 8
    }
    while c < channels {
        let s = gamma[c] / (variance[c] + eps).squareRoot()
        scale[c] = s
        shift[c] = beta[c] - mean[c] * s
        c += 1
    }
}

/// out = x * scale[c] + shift[c], optionally `+ residual`, optionally ReLU: the fused per-channel epilogue.
/// With `shuffleOutput`, channel c is written to its place after the 2-group shuffle, so the
/// reuse block needs no separate shuffle pass.
func channelAffine(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                   scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                   residual: UnsafePointer<Float>? = nil, relu: Bool = false, shuffleOutput: Bool = false,
                   channels: Int, rowLength: Int, threading: Threading) {
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)),
                          (out, x, scale, shift, residual, relu, shuffleOutput, channels, rowLength)) { args, range in
        let (out, x, scale, shift, residual, relu, shuffleOutput, channels, rowLength) = args.pointee
        for c in range {
            let dst = shuffleOutput ? shuffleDestination(c, channels: channels) : c
            rowAffine(out + dst * rowLength, x + c * rowLength, rowLength, scale: scale[c], shift: shift[c],
                      residual: residual.map { $0 + c * rowLength }, relu: relu)
        }
    }
}

/// Training-mode BatchNorm of one channel row, as PyTorch: normalise with the batch mean and
/// biased variance, update the running statistics with `momentum` using the unbiased variance,
/// and save `mean` and `invStd` for backward. Shared by the BatchNorm kernels and the fused
/// depthwise + BatchNorm kernel, so both give the same bits.
struct BatchNormTraining {
    let gamma, beta: UnsafePointer<Float>
    let savedMean, savedInvStd, runningMean, runningVar: UnsafeMutablePointer<Float>
    let momentum, eps: Float

    /// Normalises channel `c`'s row `x` (n values) into `out`, optionally `+ residual` and ReLU.
    @inline(__always)
    func forwardRow(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, channel c: Int,
                    residual: UnsafePointer<Float>? = nil, relu: Bool = false) {
        // Two passes (mean, then centred squares) in 16 float lanes: accurate for these row lengths.
        let mean = rowSum(x, n) / Float(n)
        let sq = rowCenteredSquares(x, n, mean: mean)
        let variance = sq / Float(n)
        let invStd = 1 / (variance + eps).squareRoot()
        savedMean[c] = mean; savedInvStd[c] = invStd
        let a = batchNormAffine(gamma: gamma[c], beta: beta[c], mean: mean, invStd: invStd)
        rowAffine(out, x, n, scale: a.scale, shift: a.shift, residual: residual, relu: relu)
        let unbiased = n > 1 ? sq / Float(n - 1) : variance
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
    }
}

/// The multiply-add training's BatchNorm applies to channel values, from the batch statistics:
/// one function, so that applying it again from the saved statistics gives the same bits.
@inline(__always) func batchNormAffine(gamma: Float, beta: Float, mean: Float, invStd: Float) -> (scale: Float, shift: Float) {
    let s = gamma * invStd
    return (s, beta - mean * s)
}

/// Training-mode BatchNorm applied again from the statistics the forward pass saved: the reused
/// block's backward rebuilds the normalised depthwise output this way instead of keeping it.
struct BatchNormReplay {
    let gamma, beta, savedMean, savedInvStd: UnsafePointer<Float>

    @inline(__always)
    func row(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, channel c: Int) {
        let a = batchNormAffine(gamma: gamma[c], beta: beta[c], mean: savedMean[c], invStd: savedInvStd[c])
        rowAffine(out, x, n, scale: a.scale, shift: a.shift, residual: nil, relu: false)
    }
}

/// Training-mode BatchNorm backward of one channel row. `gradGamma`/`gradBeta` accumulate.
/// dx = gamma*invStd/L * (L*dy - sum(dy) - xhat*sum(dy*xhat)).
struct BatchNormGradient {
    let gamma, savedMean, savedInvStd: UnsafePointer<Float>
    let gradGamma, gradBeta: UnsafeMutablePointer<Float>

    /// `dx` may be `x` (each value is read before it is overwritten).
    @inline(__always)
    func backwardRow(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ n: Int, channel c: Int) {
        let mean = savedMean[c], inv = savedInvStd[c]
        let (sumDy, centred) = rowSumAndCenteredDot(dy, x, n, mean: mean)
        let sumDyXhat = centred * inv
        gradGamma[c] += sumDyXhat
        gradBeta[c] += sumDy
        // dx = k*L*dy - k*sumDy - k*(x - mean)*inv*sumDyXhat, k = gamma*inv/L
        let k = gamma[c] * inv / Float(n)
        let a = SIMD8(repeating: k * Float(n)), b = SIMD8(repeating: -k * sumDy), q = SIMD8(repeating: -k * inv * sumDyXhat)
        let m = SIMD8(repeating: mean)
        var i = 0
        while i + 8 <= n { store8(b.addingProduct(a, load8(dy + i)).addingProduct(q, load8(x + i) - m), dx + i); i += 8 }
        while i < n { dx[i] = a[0] * dy[i] + b[0] + q[0] * (x[i] - mean); i += 1 }
    }
}

/// Training-mode BatchNorm forward over CNHW rows (see ``BatchNormTraining``). Like
/// ``channelAffine``, it can add a residual, take the ReLU and write each channel to its place
/// after the shuffle, in the same pass (the reused block's `relu(pw_bn(.) + res)`, shuffled).
func batchNormTrainForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                           gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                           savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                           runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                           momentum: Float, eps: Float, channels: Int, rowLength n: Int,
                           residual: UnsafePointer<Float>? = nil, relu: Bool = false, shuffleOutput: Bool = false,
                           threading: Threading) {
    let bn = BatchNormTraining(gamma: gamma, beta: beta, savedMean: savedMean, savedInvStd: savedInvStd,
                               runningMean: runningMean, runningVar: runningVar, momentum: momentum, eps: eps)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)),
                          (out, x, bn, channels, n, residual, relu, shuffleOutput)) { args, range in
        let (out, x, bn, channels, n, residual, relu, shuffleOutput) = args.pointee
        for c in range {
            let dst = shuffleOutput ? shuffleDestination(c, channels: channels) : c
            bn.forwardRow(out + dst * n, x + c * n, n, channel: c, residual: residual.map { $0 + c * n }, relu: relu)
        }
    }
}

/// Training-mode BatchNorm backward over CNHW rows (see ``BatchNormGradient``).
func batchNormBackward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                       input x: UnsafePointer<Float>, savedMean: UnsafePointer<Float>,
                       savedInvStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                       gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>,
                       channels: Int, rowLength n: Int, threading: Threading) {
    let bn = BatchNormGradient(gamma: gamma, savedMean: savedMean, savedInvStd: savedInvStd, gradGamma: gradGamma, gradBeta: gradBeta)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), (gradInput, gradOutput, x, bn, n)) { args, range in
        let (gradInput, gradOutput, x, bn, n) = args.pointee
        for c in range { bn.backwardRow(gradInput + c * n, dy: gradOutput + c * n, x: x + c * n, n, channel: c) }
    }
}
