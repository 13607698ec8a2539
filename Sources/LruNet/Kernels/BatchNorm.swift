// BatchNorm over CNHW rows: channel c is the contiguous row x[c*L ..< (c+1)*L], L = N*H*W.

/// Inference BatchNorm folded to one multiply-add per value: `scale = gamma / sqrt(var + eps)`,
/// `shift = beta - mean * scale`. Computed per forward pass by the parameter cache.
func batchNormFold(scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>,
                   gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                   mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, channels: Int, eps: Float) {
    for c in 0..<channels {
        let s = gamma[c] / (variance[c] + eps).squareRoot()
        scale[c] = s
        shift[c] = beta[c] - mean[c] * s
    }
}

/// out = x * scale[c] + shift[c], optionally `+ residual`, optionally ReLU: the fused per-channel epilogue.
func channelAffine(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                   scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                   residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                   channels: Int, rowLength: Int, threading: Threading) {
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1))) { range in
        for c in range {
            let s = scale[c], b = shift[c]
            let xr = x + c * rowLength, orow = out + c * rowLength
            switch (residual, relu) {
            case (let r?, true):
                let rr = r + c * rowLength
                for i in 0..<rowLength { orow[i] = max(xr[i] * s + b + rr[i], 0) }
            case (let r?, false):
                let rr = r + c * rowLength
                for i in 0..<rowLength { orow[i] = xr[i] * s + b + rr[i] }
            case (nil, true):
                for i in 0..<rowLength { orow[i] = max(xr[i] * s + b, 0) }
            case (nil, false):
                for i in 0..<rowLength { orow[i] = xr[i] * s + b }
            }
        }
    }
}

/// Training-mode BatchNorm forward, as PyTorch: normalise with the batch mean and biased
/// variance; update running statistics with `momentum` using the unbiased variance.
/// Saves `mean` and `invStd` per channel for the backward pass.
func batchNormTrainForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                           gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                           savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                           runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                           momentum: Float, eps: Float, channels: Int, rowLength n: Int, threading: Threading) {
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1))) { range in
        for c in range {
            let xr = x + c * n, orow = out + c * n
            // Two passes in float with a Double total: stable for the row lengths we see.
            var sum: Double = 0
            for i in 0..<n { sum += Double(xr[i]) }
            let mean = Float(sum / Double(n))
            var sq: Double = 0
            for i in 0..<n { let d = xr[i] - mean; sq += Double(d * d) }
            let variance = Float(sq / Double(n))
            let invStd = 1 / (variance + eps).squareRoot()
            savedMean[c] = mean; savedInvStd[c] = invStd
            let s = gamma[c] * invStd, b = beta[c] - mean * s
            for i in 0..<n { orow[i] = xr[i] * s + b }
            let unbiased = n > 1 ? Float(sq / Double(n - 1)) : variance
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
            runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
        }
    }
}

/// Training-mode BatchNorm backward. `gradGamma`/`gradBeta` accumulate.
/// dx = gamma*invStd/L * (L*dy - sum(dy) - xhat*sum(dy*xhat)).
func batchNormBackward(gradInput: UnsafeMutablePointer<Float>, gradOutput: UnsafePointer<Float>,
                       input x: UnsafePointer<Float>, savedMean: UnsafePointer<Float>,
                       savedInvStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                       gradGamma: UnsafeMutablePointer<Float>, gradBeta: UnsafeMutablePointer<Float>,
                       channels: Int, rowLength n: Int, threading: Threading) {
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1))) { range in
        for c in range {
            let xr = x + c * n, dy = gradOutput + c * n, dx = gradInput + c * n
            let mean = savedMean[c], inv = savedInvStd[c]
            var sumDy: Float = 0, sumDyX: Float = 0
            for i in 0..<n {
                sumDy += dy[i]
                sumDyX += dy[i] * (xr[i] - mean)
            }
            sumDyX *= inv
            gradGamma[c] += sumDyX
            gradBeta[c] += sumDy
            let k = gamma[c] * inv / Float(n)
            let a = Float(n), meanDy = sumDy, xs = sumDyX * inv
            for i in 0..<n { dx[i] = k * (a * dy[i] - meanDy - (xr[i] - mean) * xs) }
        }
    }
}
