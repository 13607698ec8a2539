/// DropoutLayer: identity in inference; in training zeroes each value with
/// probability `p` and scales the rest by `1/(1-p)`. Each image's mask comes from its own
/// generator, seeded by the step's seed and the image's place in the global batch, so a
/// data-parallel run draws the masks one process would, whichever process holds the image.
package final class DropoutLayer: Layer {
    package let name: String
    package let probability: Float
    private var buffers = LayerBuffers()
    private var mask = FloatBuffer(count: 0)

    package init(name: String, probability: Float) {
        precondition(probability >= 0 && probability < 1, "DropoutLayer \(name): p must be in [0, 1)")
        self.name = name; self.probability = probability
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        buffers.resize(input: input, output: input, training: training, ownsOutput: training)  // identity in inference
        if mask.count != (training ? input.count : 0) { mask = FloatBuffer(count: training ? input.count : 0) }
        return input
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        guard context.training else { return input }
        let keep = 1 / (1 - probability)
        let out = buffers.out, m = mask.pointer
        let shape = buffers.output, plane = shape.height * shape.width, rowLength = shape.rowLength
        for n in 0..<shape.batch {
            var rng = SplitMix64(seed: SeedStream.seed(context.stepSeed, 0, 4, context.firstImage + n))
            for c in 0..<shape.channels {
                for p in 0..<plane {
                    let i = c * rowLength + n * plane + p
                    m[i] = rng.nextUniform() < probability ? 0 : keep
                    out[i] = input[i] * m[i]
                }
            }
        }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let g = buffers.gradIn, m = mask.pointer
        for i in 0..<buffers.output.count { g[i] = gradOutput[i] * m[i] }
        return g
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "dropout p=\(probability)", outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
