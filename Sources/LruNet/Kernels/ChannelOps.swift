// Channel permutations and copies. In CNHW every channel is one contiguous row of
// `rowLength` values. The shuffle is never a pass of its own: the epilogues that write a
// reused block's output put each channel's row at its shuffled place.

/// The authors' 2-group shuffle with its half swap: out[2k] = in[C/2 + k], out[2k+1] = in[k].
@inline(__always) func shuffleSource(_ outChannel: Int, channels: Int) -> Int {
    outChannel % 2 == 0 ? channels / 2 + outChannel / 2 : outChannel / 2
}

/// Where input channel c lands after the shuffle (the inverse of ``shuffleSource(_:channels:)``).
@inline(__always) func shuffleDestination(_ inChannel: Int, channels: Int) -> Int {
    inChannel < channels / 2 ? 2 * inChannel + 1 : 2 * (inChannel - channels / 2)
}

/// `torch.cat([x, x], 1)`, split across the threads by channel rows of `rowLength`.
func concatSelfForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, channels: Int, rowLength: Int,
                       threading: Threading) {
    let count = channels * rowLength
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)), (out, input, rowLength, count)) { args, rows in
        let (out, input, l, count) = args.pointee
        let lo = rows.lowerBound * l, n = rows.count * l
        (out + lo).update(from: input + lo, count: n)
        (out + count + lo).update(from: input + lo, count: n)
    }
}

/// The gradient of ``concatSelfForward``: both copies' gradients summed.
func concatSelfBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>, channels: Int,
                        rowLength: Int, threading: Threading) {
    let count = channels * rowLength
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)), (gradInput, gradOutput, rowLength, count)) { args, rows in
        let (gradInput, gradOutput, l, count) = args.pointee
        let lo = rows.lowerBound * l
        rowAdd(gradInput + lo, gradOutput + lo, gradOutput + count + lo, rows.count * l)
    }
}
