import CLruNetKernels

/// `act(x)` over `count` values (NaN stays NaN, as in PyTorch), split across the threads in
/// blocks of 8 values.
func activationForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, kind: ActivationKind, count: Int,
                       threading: Threading) {
    threading.parallelFor(count / 8, minPerThread: 4096, (out, input, kind, count)) { args, vectors in
        let (out, input, kind, count) = args.pointee
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == count / 8 ? count : 8 * vectors.upperBound   // the last chunk takes the tail
        if kind == .relu6 { lru_relu6(out + lo, input + lo, hi - lo) } else { lru_relu(out + lo, input + lo, hi - lo) }
    }
}

/// max(x, 0), as ``activationForward(_:_:kind:count:threading:)``.
func reluForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int, threading: Threading) {
    activationForward(out, input, kind: .relu, count: count, threading: threading)
}

/// The gradient through an activation given its output: it passes where the output was
/// positive (and, for ReLU6, below 6).
func activationBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                        output: UnsafePointer<Float>, kind: ActivationKind, count: Int, threading: Threading) {
    threading.parallelFor(count / 8, minPerThread: 4096, (gradInput, gradOutput, output, kind, count)) { args, vectors in
        let (gradInput, gradOutput, output, kind, count) = args.pointee
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == count / 8 ? count : 8 * vectors.upperBound
        if kind == .relu6 { lru_row_relu6_grad(gradInput + lo, gradOutput + lo, output + lo, hi - lo) }
        else { rowReLUGradient(gradInput + lo, gradOutput + lo, output: output + lo, hi - lo) }
    }
}

/// Gradient through ReLU given its output.
func reluBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, count: Int, threading: Threading) {
    activationBackward(gradInput, gradOutput, output: output, kind: .relu, count: count, threading: threading)
}

/// y[c*L + i] += bias[c]
func addChannelBias(_ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, channels: Int, rowLength: Int) {
    for c in 0..<channels {
        let b = bias[c], row = y + c * rowLength
        for i in 0..<rowLength { row[i] += b }
    }
}

/// gradBias[c] += sum of row c.
func accumulateRowSums(_ gradBias: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, channels: Int, rowLength: Int) {
    for c in 0..<channels {
        var s: Float = 0
        let row = g + c * rowLength
        for i in 0..<rowLength { s += row[i] }
        gradBias[c] += s
    }
}
