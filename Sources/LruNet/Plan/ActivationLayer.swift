/// ReLU (`max(x, 0)`) or ReLU6 (`min(max(x, 0), 6)`), NaN kept as PyTorch does.
package final class ActivationLayer: Layer {
    package let name: String
    package let kind: ActivationKind
    private var buffers = LayerBuffers()

    package init(name: String, kind: ActivationKind) {
        precondition(kind != .none, "ActivationLayer \(name): choose relu or relu6")
        self.name = name; self.kind = kind
    }
    package static func relu(_ name: String) -> ActivationLayer { ActivationLayer(name: name, kind: .relu) }
    package static func relu6(_ name: String) -> ActivationLayer { ActivationLayer(name: name, kind: .relu6) }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        buffers.resize(input: input, output: input, training: training)
        return input
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        activationForward(buffers.out, input, kind: kind, count: buffers.output.count, threading: context.threading)
        return buffers.out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        activationBackward(buffers.gradIn, gradOutput, output: buffers.out, kind: kind, count: buffers.output.count,
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
        [LayerSummary(name: name, op: kind == .relu6 ? "relu6" : "relu", outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
