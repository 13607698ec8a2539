import CLruNetKernels

/// Inference 1x1 convolution, stride 1, any groups, as our register-blocked GEMM with the
/// epilogue fused (Sources/CLruNetKernels/body_tile.h): per group g,
/// `out_g = act(W_g x in_g * scale + shift (+ residual_g))` over rows of `rowLength` values
/// (CNHW: the input rows are the GEMM's B directly). One pass over the output instead of a
/// GEMM and an epilogue pass, and no library call overhead for the small matrices of batch 1.
/// Work is split over (group, column block, row block) so every thread gets some: row blocks
/// only where the groups and column blocks are fewer than the threads (small maps at batch 1)
/// and each thread still gets enough multiply-adds to outweigh the hand-off.
package func pointwiseForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              inChannels: Int, outChannels: Int, groups: Int, rowLength l: Int,
                              scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                              activation: ActivationKind, destinations: UnsafePointer<Int32>? = nil, threading: Threading) {
    let inPer = inChannels / groups, outPer = outChannels / groups
    let (blocks, rowBlocks) = pointwiseSplit(groups: groups, inPer: inPer, outPer: outPer, rowLength: l,
                                             threads: threading.threads)
    let columnItems = groups * blocks
    let pass = PointwisePass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight), scale: scale.map(ConstRows.init),
                             shift: shift.map(ConstRows.init), residual: residual.map(ConstRows.init),
                             destinations: destinations.map(ConstIndexRows.init), activation: activation,
                             inPer: inPer, outPer: outPer, rowLength: l, blocks: blocks, rowBlocks: rowBlocks)
    threading.parallelFor(columnItems * rowBlocks, pass) { args, items in
        let r = args.pointee, out = r.out.base, input = r.input.base, weight = r.weight.base
        let scale = r.scale?.base, shift = r.shift?.base, residual = r.residual?.base, destinations = r.destinations?.base
        let activation = r.activation, inPer = r.inPer, outPer = r.outPer, l = r.rowLength, blocks = r.blocks
        let rowBlocks = r.rowBlocks
        for item in items {
            let g = item / (blocks * rowBlocks), b = item / rowBlocks % blocks, rb = item % rowBlocks
            let c0 = (l * b / blocks) & ~15, c1 = b == blocks - 1 ? l : (l * (b + 1) / blocks) & ~15
            // Row blocks of whole multiples of 8 rows (the register blocks' heights), the last one the rest.
            let r0 = (outPer * rb / rowBlocks) & ~7, r1 = rb == rowBlocks - 1 ? outPer : (outPer * (rb + 1) / rowBlocks) & ~7
            let first = g * outPer + r0
            // With destinations (a shuffle folded in), rows go to their absolute places from `out`.
            var e = lru_gemm_epilogue(out: destinations == nil ? out + first * l : out, ldo: l,
                                      res: residual.map { $0 + first * l }, ldr: l,
                                      scale: scale.map { $0 + first }, shift: shift.map { $0 + first },
                                      dest: destinations.map { $0 + first }, act: activation.rawValue)
            lru_gemm_epilogue_run(weight + first * inPer, inPer, input + g * inPer * l, l, r1 - r0, c0, c1, &e)
        }
    }
}

/// How ``pointwiseForward`` splits each group: column blocks of at least 256 values (a few
/// hundred FMAs per weight), and row blocks only where groups x column blocks are fewer than the
/// threads, of 16 rows or more and at least 128 K multiply-adds each.
func pointwiseSplit(groups: Int, inPer: Int, outPer: Int, rowLength l: Int, threads: Int) -> (blocks: Int, rowBlocks: Int) {
    let blocks = max(1, min((threads + groups - 1) / groups * 2, l / 256))
    let columnItems = groups * blocks
    if columnItems >= threads { return (blocks, 1) }
    return (blocks, max(1, min((threads + columnItems - 1) / columnItems, outPer / 16, outPer * inPer * l / 131_072)))
}

/// Grouped 1x1 conv items (group, column block), each thread its own items' output columns.
private struct PointwisePass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, scale: ConstRows?, shift: ConstRows?, residual: ConstRows?
    let destinations: ConstIndexRows?
    let activation: ActivationKind
    let inPer: Int, outPer: Int, rowLength: Int, blocks: Int, rowBlocks: Int
}
