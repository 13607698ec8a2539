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
    let pass = ConcatSelfPass(out: Rows(out), input: ConstRows(input), rowLength: rowLength, count: count)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)), pass) { args, rows in
        let r = args.pointee
        let lo = rows.lowerBound * r.rowLength, n = rows.count * r.rowLength
        (r.out + lo).update(from: r.input + lo, count: n)
        (r.out + r.count + lo).update(from: r.input + lo, count: n)
    }
}

/// The gradient of ``concatSelfForward``: both copies' gradients summed.
func concatSelfBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>, channels: Int,
                        rowLength: Int, threading: Threading) {
    let count = channels * rowLength
    let pass = ConcatSelfPass(out: Rows(gradInput), input: ConstRows(gradOutput), rowLength: rowLength, count: count)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(rowLength, 1)), pass) { args, rows in
        let r = args.pointee
        let lo = rows.lowerBound * r.rowLength
        rowAdd(r.out + lo, r.input + lo, r.input + r.count + lo, rows.count * r.rowLength)
    }
}

/// A self-concatenation region (`count` values per copy): each thread its own channel rows.
private struct ConcatSelfPass: Sendable {
    let out: Rows, input: ConstRows, rowLength: Int, count: Int
}
