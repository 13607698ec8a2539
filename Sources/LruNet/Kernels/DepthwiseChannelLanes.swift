import CLruNetKernels

// Depthwise 3x3 (padding 1, stride 1 or 2) on small planes at small batches, eight channels in
// the vector lanes (lru_dw3_channel_lanes in Sources/CLruNetKernels/body_depthwise.h; the reuse
// blocks' tiles call it at batch 1, body_tile.h). The other kernels put a channel's images in the
// lanes; with one image and a 4x4 or 7x7 plane they set up taps and edge masks for a few
// multiply-adds per channel.

/// Whether ``depthwiseForward`` takes the channel-lanes kernel: 3x3 with padding 1 on planes up
/// to 16 x 16 with stride 2 at fewer than eight images (the image-lanes kernel needs eight), and
/// on planes up to 8 x 8 with stride 1 at one image (from two images on, the per-channel kernels
/// are as fast: docs/performance.md).
func usesChannelLanes(batch: Int, height: Int, width: Int, geometry g: ConvGeometry) -> Bool {
    guard g.kernelH == 3 && g.kernelW == 3 && g.padding == 1 else { return false }
    switch g.stride {
    case 1: return batch == 1 && height <= 8 && width <= 8
    case 2: return batch < 8 && height <= Int(LRU_LANES_MAX_SIDE) && width <= Int(LRU_LANES_MAX_SIDE)
    default: return false
    }
}

/// Same contract as ``depthwiseForward``.
func depthwiseChannelLanesForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                                  _ weight: UnsafePointer<Float>, channels: Int, multiplier mult: Int,
                                  batch: Int, height: Int, width: Int, stride: Int,
                                  scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: ActivationKind,
                                  threading: Threading) {
    let pass = ChannelLanesPass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight),
                                scale: scale.map(ConstRows.init), shift: shift.map(ConstRows.init), activation: activation,
                                channels: channels, multiplier: mult, batch: batch, height: height, width: width,
                                stride: stride)
    // A job is eight channels of one image; a thread takes a run of them, one call per image.
    let groups = (channels + 7) / 8
    threading.parallelFor(batch * groups, pass) { args, jobs in
        let r = args.pointee, mult = r.multiplier, groups = (r.channels + 7) / 8
        let hw = r.height * r.width, how = ((r.height - 1) / r.stride + 1) * ((r.width - 1) / r.stride + 1)
        var job = jobs.lowerBound
        while job < jobs.upperBound {
            let image = job / groups, first = job % groups
            let last = min(groups, first + jobs.upperBound - job)
            let c0 = first * 8, c1 = min(r.channels, last * 8)
            lru_dw3_channel_lanes(r.out + (c0 * mult * r.batch + image) * how, r.batch * how,
                                  r.input + (c0 * r.batch + image) * hw, r.batch * hw, c1 - c0,
                                  r.height, r.width, r.stride, r.weight + c0 * mult * 9, mult,
                                  r.scale.map { $0 + c0 * mult }, r.shift.map { $0 + c0 * mult }, r.activation.rawValue)
            job += last - first
        }
    }
}

private struct ChannelLanesPass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, scale: ConstRows?, shift: ConstRows?
    let activation: ActivationKind
    let channels: Int, multiplier: Int, batch: Int, height: Int, width: Int, stride: Int
}
