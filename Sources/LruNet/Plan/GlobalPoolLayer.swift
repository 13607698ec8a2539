import CLruNetKernels

/// Average over each whole map: `[C][N][H][W]` to `[C][N][1][1]` (the baselines'
/// `F.avg_pool2d(out, 4)` on their last 4x4 map).
package final class GlobalPoolLayer: Layer {
    package let name: String
    package var profileBucket: OpTimer? { .poolShuffleConcat }
    private var buffers = LayerBuffers()

    package init(name: String) { self.name = name }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        let out = ActivationShape(channels: input.channels, batch: input.batch, height: 1, width: 1)
        buffers.resize(input: input, output: out, training: training)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        let i = buffers.input, plane = i.plane
        let pass = PlaneMeans(out: Rows(buffers.out), input: ConstRows(input), plane: plane)
        context.threading.parallelFor(i.channels * i.batch, minPerThread: max(1, 16384 / max(plane, 1)), pass) { args, planes in
            let r = args.pointee
            lru_plane_means(r.out + planes.lowerBound, r.input + planes.lowerBound * r.plane, planes.count, r.plane)
        }
        return buffers.out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let i = buffers.input, plane = i.plane, inv = 1 / Float(plane), g = buffers.gradIn
        for p in 0..<(i.channels * i.batch) { (g + p * plane).update(repeating: gradOutput[p] * inv, count: plane) }
        return g
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "global avgpool", outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}

/// Each thread its own planes.
private struct PlaneMeans: Sendable {
    let out: Rows, input: ConstRows
    let plane: Int
}
