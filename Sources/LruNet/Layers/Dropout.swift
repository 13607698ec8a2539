/// Dropout: identity in inference; in training zeroes each value with
/// probability `p` and scales the rest by `1/(1-p)`, masks drawn from the
/// context's seeded generator.
package final class Dropout: Layer {
    package let name: String
    package let probability: Float
    private var buffers = LayerBuffers()
    private var mask = FloatBuffer(count: 0)

    package init(name: String, probability: Float) {
        precondition(probability >= 0 && probability < 1, "Dropout \(name): p must be in [0, 1)")
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
        let out = buffers.out.pointer, m = mask.pointer
        for i in 0..<buffers.output.count {
            m[i] = context.rng.nextUniform() < probability ? 0 : keep
            out[i] = input[i] * m[i]
        }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let g = buffers.gradIn.pointer, m = mask.pointer
        for i in 0..<buffers.output.count { g[i] = gradOutput[i] * m[i] }
        return g
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "dropout p=\(probability)", outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
