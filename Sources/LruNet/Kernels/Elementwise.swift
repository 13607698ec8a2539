import CLruNetKernels

/// max(x, 0) over `count` values (NaN stays NaN, as in PyTorch), split across the threads in
/// blocks of 8 values.
func reluForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int, threading: Threading) {
    threading.parallelFor(count / 8, minPerThread: 4096, (out, input, count)) { args, vectors in
        let (out, input, count) = args.pointee
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == count / 8 ? count : 8 * vectors.upperBound   // the last chunk takes the tail
        lru_relu(out + lo, input + lo, hi - lo)
    }
}

/// Gradient through ReLU given its output: passes where the output was positive.
func reluBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, count: Int, threading: Threading) {
    threading.parallelFor(count / 8, minPerThread: 4096, (gradInput, gradOutput, output, count)) { args, vectors in
        let (gradInput, gradOutput, output, count) = args.pointee
        let lo = 8 * vectors.lowerBound
        let hi = vectors.upperBound == count / 8 ? count : 8 * vectors.upperBound
        rowReLUGradient(gradInput + lo, gradOutput + lo, output: output + lo, hi - lo)
    }
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
