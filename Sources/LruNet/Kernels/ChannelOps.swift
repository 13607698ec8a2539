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

/// `torch.cat([x, x], 1)`.
func concatSelfForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, count: Int) {
    out.update(from: input, count: count)
    (out + count).update(from: input, count: count)
}

func concatSelfBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { gradInput[i] = gradOutput[i] + gradOutput[count + i] }
}
