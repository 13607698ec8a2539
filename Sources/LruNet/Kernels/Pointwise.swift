import CLruNetKernels

/// Inference 1x1 convolution, stride 1, any groups, as our register-blocked GEMM with the
/// epilogue fused (Sources/CLruNetKernels/body_tile.h): per group g,
/// `out_g = act(W_g x in_g * scale + shift (+ residual_g))` over rows of `rowLength` values
/// (CNHW: the input rows are the GEMM's B directly). One pass over the output instead of a
/// GEMM and an epilogue pass, and no library call overhead for the small matrices of batch 1.
/// Work is split over (group, column block) so every thread gets some.
func pointwiseForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                      inChannels: Int, outChannels: Int, groups: Int, rowLength l: Int,
                      scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                      activation: ActivationKind, destinations: UnsafePointer<Int32>? = nil, threading: Threading) {
    let inPer = inChannels / groups, outPer = outChannels / groups
    // Column blocks of at least 256 values (a few hundred FMAs per weight) and whole 16-float vectors.
    let blocks = max(1, min((threading.threads + groups - 1) / groups * 2, l / 256))
    let pass = PointwisePass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight), scale: scale.map(ConstRows.init),
                             shift: shift.map(ConstRows.init), residual: residual.map(ConstRows.init),
                             destinations: destinations.map(ConstIndexRows.init), activation: activation,
                             inPer: inPer, outPer: outPer, rowLength: l, blocks: blocks)
    threading.parallelFor(groups * blocks, pass) { args, items in
        let r = args.pointee, out = r.out.base, input = r.input.base, weight = r.weight.base
        let scale = r.scale?.base, shift = r.shift?.base, residual = r.residual?.base, destinations = r.destinations?.base
        let activation = r.activation, inPer = r.inPer, outPer = r.outPer, l = r.rowLength, blocks = r.blocks
        for item in items {
            let g = item / blocks, b = item % blocks
            let c0 = (l * b / blocks) & ~15, c1 = b == blocks - 1 ? l : (l * (b + 1) / blocks) & ~15
            // With destinations (a shuffle folded in), rows go to their absolute places from `out`.
            var e = lru_gemm_epilogue(out: destinations == nil ? out + g * outPer * l : out, ldo: l,
                                      res: residual.map { $0 + g * outPer * l }, ldr: l,
                                      scale: scale.map { $0 + g * outPer }, shift: shift.map { $0 + g * outPer },
                                      dest: destinations.map { $0 + g * outPer }, act: activation.rawValue)
            lru_gemm_epilogue_run(weight + g * outPer * inPer, inPer, input + g * inPer * l, l, outPer, c0, c1, &e)
        }
    }
}

/// Grouped 1x1 conv items (group, column block), each thread its own items' output columns.
private struct PointwisePass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, scale: ConstRows?, shift: ConstRows?, residual: ConstRows?
    let destinations: ConstIndexRows?
    let activation: ActivationKind
    let inPer: Int, outPer: Int, rowLength: Int, blocks: Int
}
