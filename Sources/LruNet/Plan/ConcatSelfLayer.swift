/// `torch.cat([x, x], 1)`: doubles the channels by repeating them, as LruNet
/// does between stages. Before a reused block, the inference rewrite drops it: the block reads
/// channel c from c mod C (an index map, no copy; ``FusionRewrite``).
package final class ConcatSelfLayer: Layer {
    package let name: String
    package var profileBucket: OpTimer? { .poolShuffleConcat }
    private var buffers = LayerBuffers()

    package init(name: String) { self.name = name }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        var out = input
        out.channels *= 2
        buffers.resize(input: input, output: out, training: training)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        concatSelfForward(buffers.out, input, channels: buffers.input.channels, rowLength: buffers.input.rowLength,
                          threading: context.threading)
        return buffers.out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        concatSelfBackward(buffers.gradIn, gradOutput, channels: buffers.input.channels, rowLength: buffers.input.rowLength,
                           threading: context.threading)
        return buffers.gradIn
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "concat [x, x]", outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
