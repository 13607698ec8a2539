import CLruNetKernels

// BatchNorm over CNHW rows: channel c is the contiguous row x[c*L ..< (c+1)*L], L = N*H*W.
// The row kernels are C (Sources/CLruNetKernels/body_rows.h); here the parallel loops.

/// Inference BatchNorm folded to one multiply-add per value: `scale = gamma / sqrt(var + eps)`,
/// `shift = beta - mean * scale`. Computed per forward pass by the parameter cache.
func batchNormFold(scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>,
                   gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                   mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, channels: Int, eps: Float) {
    lru_bn_fold(scale, shift, gamma, beta, mean, variance, channels, eps)
}

/// An activation a kernel applies on its way out.
package enum ActivationKind: Int32, Sendable {
    case none = 0, relu = 1, relu6 = 2
}

/// out = act(x*s + b (+ r)), over one row.
@inline(__always) func rowAffine(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, scale: Float, shift: Float,
                                 residual r: UnsafePointer<Float>?, activation: ActivationKind) {
    lru_row_affine(out, x, n, scale, shift, r, activation.rawValue)
}

/// g = (mask > 0) ? x : 0: an output gradient through a ReLU whose output was `mask`.
@inline(__always) func rowReLUGradient(_ g: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, output mask: UnsafePointer<Float>, _ n: Int) {
    lru_row_relu_grad(g, x, mask, n)
}

/// The sum of a row's `n` values.
@inline(__always) func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float { lru_row_sum(x, n) }

/// out = a + b (out may be a).
@inline(__always) func rowAdd(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
    lru_row_add(out, a, b, n)
}

/// out = act(x * scale[c] + shift[c] (+ residual)): the fused per-channel epilogue. `out` may be `x`.
/// With `shuffleOutput`, channel c is written to its place after the 2-group shuffle, so the
/// reuse block needs no separate shuffle pass.
package func channelAffine(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                   scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                   residual: UnsafePointer<Float>? = nil, activation: ActivationKind = .none, shuffleOutput: Bool = false,
                   channels: Int, rowLength: Int, threading: Threading) {
    let pass = AffinePass(out: Rows(out), x: ConstRows(x), scale: ConstRows(scale), shift: ConstRows(shift),
                          residual: residual.map(ConstRows.init), activation: activation, shuffleOutput: shuffleOutput,
                          channels: channels, rowLength: rowLength)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)), pass) { args, range in
        let r = args.pointee, n = r.rowLength
        for c in range {
            let dst = r.shuffleOutput ? shuffleDestination(c, channels: r.channels) : c
            rowAffine(r.out + dst * n, r.x + c * n, n, scale: r.scale[c], shift: r.shift[c],
                      residual: r.residual.map { $0 + c * n }, activation: r.activation)
        }
    }
}

/// A per-channel affine region: each thread its own channels (rows of `x`, and their places in `out`).
private struct AffinePass: Sendable {
    let out: Rows, x: ConstRows, scale: ConstRows, shift: ConstRows, residual: ConstRows?
    let activation: ActivationKind, shuffleOutput: Bool, channels: Int, rowLength: Int
}

/// Training-mode BatchNorm of one channel row, as PyTorch: normalise with the batch mean and
/// biased variance, update the running statistics with `momentum` using the unbiased variance,
/// and save `mean` and `invStd` for backward. Shared by the BatchNorm kernels and the fused
/// depthwise + BatchNorm kernel, so both give the same bits.
package typealias BatchNormTraining = lru_bn_train

extension lru_bn_train {
    package init(gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, savedMean: UnsafeMutablePointer<Float>,
         savedInvStd: UnsafeMutablePointer<Float>, runningMean: UnsafeMutablePointer<Float>,
         runningVar: UnsafeMutablePointer<Float>, momentum: Float, eps: Float) {
        self.init(gamma: gamma, beta: beta, saved_mean: savedMean, saved_invstd: savedInvStd, running_mean: runningMean,
                  running_var: runningVar, momentum: momentum, eps: eps)
    }

    /// Normalises channel `c`'s row `x` (n values) into `out`, optionally `+ residual` and an activation.
    @inline(__always)
    func forwardRow(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, channel c: Int,
                    residual: UnsafePointer<Float>? = nil, activation: ActivationKind = .none) {
        withUnsafePointer(to: self) { lru_bn_train_row($0, out, x, n, c, residual, activation.rawValue) }
    }

    /// Channel `c`'s batch statistics from its row `x`, saved and folded into the running ones,
    /// without normalising the row (a consumer folds ``replay``'s affine form into its weights).
    @inline(__always)
    func statisticsRow(_ x: UnsafePointer<Float>, _ n: Int, channel c: Int) {
        withUnsafePointer(to: self) { lru_bn_train_row($0, nil, x, n, c, nil, ActivationKind.none.rawValue) }
    }

    /// The normalisation from the statistics saved so far.
    var replay: BatchNormReplay {
        BatchNormReplay(gamma: gamma, beta: beta, savedMean: saved_mean, savedInvStd: saved_invstd)
    }
}

/// Training-mode BatchNorm's normalisation from the statistics the forward pass saved: the
/// reused block's backward folds it into the 1x1 weight gradient (GroupGemm.swift).
typealias BatchNormReplay = lru_bn_replay

extension lru_bn_replay {
    init(gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>) {
        self.init(gamma: gamma, beta: beta, saved_mean: savedMean, saved_invstd: savedInvStd)
    }

    /// Channels `first ..< first + count` as `scale * x + shift`, the multiply-add of the
    /// forward's `lru_bn_train_row`, for a consumer that folds the normalisation into its
    /// weights. (Folded, a channel whose mean is far out against its spread loses float
    /// precision as the unfolded form does: `scale * x` and `shift` cancel.)
    func affine(first: Int, count: Int, scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>) {
        for q in 0..<count {
            let c = first + q, s = gamma[c] * saved_invstd[c]
            scale[q] = s
            shift[q] = beta[c] - saved_mean[c] * s
        }
    }
}

/// Training-mode BatchNorm backward of one channel row. `gradGamma`/`gradBeta` accumulate.
/// dx = gamma*invStd/L * (L*dy - sum(dy) - xhat*sum(dy*xhat)).
package typealias BatchNormGradient = lru_bn_grad

extension lru_bn_grad {
    package init(gamma: UnsafePointer<Float>, savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>,
         gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>) {
        self.init(gamma: gamma, saved_mean: savedMean, saved_invstd: savedInvStd, grad_gamma: gradGamma, grad_beta: gradBeta)
    }

    /// Backward through `relu(bn(x) + residual)`: `gy` = the gradient `g` at the output where
    /// the output `mask` is positive (the gradient at the sum, the residual's too), `dx` = this
    /// BatchNorm's input gradient from it, as ``backwardRow`` computes it; returns the sum of `dx`.
    @inline(__always)
    func backwardReLURow(_ dx: UnsafeMutablePointer<Float>, gy: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                         output mask: UnsafePointer<Float>, x: UnsafePointer<Float>, _ n: Int, channel c: Int) -> Float {
        withUnsafePointer(to: self) { lru_bn_relu_backward_row($0, dx, gy, g, mask, x, n, c) }
    }

    /// `dx` may be `x` (each value is read before it is overwritten).
    @inline(__always)
    func backwardRow(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ n: Int, channel c: Int) {
        withUnsafePointer(to: self) { lru_bn_backward_row($0, dx, dy, x, n, c) }
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
                           residual: UnsafePointer<Float>? = nil, activation: ActivationKind = .none, shuffleOutput: Bool = false,
                           threading: Threading) {
    let bn = BatchNormTraining(gamma: gamma, beta: beta, savedMean: savedMean, savedInvStd: savedInvStd,
                               runningMean: runningMean, runningVar: runningVar, momentum: momentum, eps: eps)
    batchNormTrainForward(out, x, bn: bn, channels: channels, rowLength: n, residual: residual, activation: activation,
                          shuffleOutput: shuffleOutput, threading: threading)
}

func batchNormTrainForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, bn: BatchNormTraining,
                           channels: Int, rowLength n: Int,
                           residual: UnsafePointer<Float>? = nil, activation: ActivationKind = .none, shuffleOutput: Bool = false,
                           threading: Threading) {
    let pass = TrainingPass(out: Rows(out), x: ConstRows(x), bn: bn, residual: residual.map(ConstRows.init),
                            activation: activation, shuffleOutput: shuffleOutput, channels: channels, rowLength: n)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), pass) { args, range in
        let r = args.pointee, n = r.rowLength
        for c in range {
            let dst = r.shuffleOutput ? shuffleDestination(c, channels: r.channels) : c
            r.bn.forwardRow(r.out + dst * n, r.x + c * n, n, channel: c, residual: r.residual.map { $0 + c * n },
                            activation: r.activation)
        }
    }
}

/// A training BatchNorm region: each thread its own channels, and their statistics in `bn`.
private struct TrainingPass: Sendable {
    let out: Rows, x: ConstRows, bn: BatchNormTraining, residual: ConstRows?
    let activation: ActivationKind, shuffleOutput: Bool, channels: Int, rowLength: Int
}

/// Training-mode BatchNorm backward over CNHW rows (see ``BatchNormGradient``).
func batchNormBackward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                       input x: UnsafePointer<Float>, savedMean: UnsafePointer<Float>,
                       savedInvStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                       gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>,
                       channels: Int, rowLength n: Int, threading: Threading) {
    let bn = BatchNormGradient(gamma: gamma, savedMean: savedMean, savedInvStd: savedInvStd, gradGamma: gradGamma, gradBeta: gradBeta)
    let pass = GradientPass(gradInput: Rows(gradInput), gradOutput: ConstRows(gradOutput), x: ConstRows(x), bn: bn, rowLength: n)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), pass) { args, range in
        let r = args.pointee, n = r.rowLength
        for c in range { r.bn.backwardRow(r.gradInput + c * n, dy: r.gradOutput + c * n, x: r.x + c * n, n, channel: c) }
    }
}

/// A BatchNorm backward region: each thread its own channels, and their parameter gradients in `bn`.
private struct GradientPass: Sendable {
    let gradInput: Rows, gradOutput: ConstRows, x: ConstRows, bn: BatchNormGradient, rowLength: Int
}
