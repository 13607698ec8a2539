/// Rectified linear unit, `max(x, 0)`.
public final class ReLU: Layer {
    public let name: String
    private var buffers = LayerBuffers()

    /// In inference the BatchNorm before it applies the ReLU in its own pass (``Sequential`` sets this).
    var fusedIntoBatchNorm = false

    public init(name: String) { self.name = name }

    public func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        buffers.resize(input: input, output: input, training: training)
        return input
    }

    public func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        if fusedIntoBatchNorm { return input }
        reluForward(buffers.out.pointer, input, count: buffers.output.count, threading: context.threading)
        return buffers.out.pointer
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        reluBackward(buffers.gradIn.pointer, gradOutput, output: buffers.out.pointer, count: buffers.output.count,
                     threading: context.threading)
        return buffers.gradIn.pointer
    }

    public var summary: LayerSummary {
        LayerSummary(name: name, op: "relu", outputShape: buffers.output, parameters: 0, macs: [:])
    }
}
