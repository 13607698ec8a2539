func reluForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = max(input[i], 0) }
}

/// Gradient through ReLU given its output: passes where the output was positive.
func reluBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                  output: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { gradInput[i] = output[i] > 0 ? gradOutput[i] : 0 }
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
