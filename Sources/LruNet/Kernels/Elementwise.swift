import CLruNetKernels

/// `act(x)` over `count` values (NaN stays NaN, as in PyTorch), split across the threads in
/// blocks of 8 values.
func activationForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, kind: ActivationKind, count: Int,
                       threading: Threading) {
    let pass = ActivationPass(out: Rows(out), input: ConstRows(input), gradOutput: nil, kind: kind, count: count)
    threading.parallelFor(count / 8, minPerThread: 4096, pass) { args, vectors in
        let r = args.pointee
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == r.count / 8 ? r.count : 8 * vectors.upperBound   // the last chunk takes the tail
        if r.kind == .relu6 { lru_relu6(r.out + lo, r.input + lo, hi - lo) } else { lru_relu(r.out + lo, r.input + lo, hi - lo) }
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
    let pass = ActivationPass(out: Rows(gradInput), input: ConstRows(output), gradOutput: ConstRows(gradOutput), kind: kind,
                              count: count)
    threading.parallelFor(count / 8, minPerThread: 4096, pass) { args, vectors in
        let r = args.pointee, gradOutput = r.gradOutput!
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == r.count / 8 ? r.count : 8 * vectors.upperBound
        if r.kind == .relu6 { lru_row_relu6_grad(r.out + lo, gradOutput + lo, r.input + lo, hi - lo) }
        else { rowReLUGradient(r.out + lo, gradOutput + lo, output: r.input + lo, hi - lo) }
    }
}

/// An activation region: forward writes `act(input)` to `out`; backward writes the gradient
/// at the input to `out`, from `gradOutput` and the forward output (`input`). Each thread its
/// own blocks of 8.
private struct ActivationPass: Sendable {
    let out: Rows, input: ConstRows, gradOutput: ConstRows?
    let kind: ActivationKind, count: Int
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
