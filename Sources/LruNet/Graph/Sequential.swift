/// Layers applied one after another; the model's graph.
public final class Sequential {
    public let layers: [Layer]
    public private(set) var inputShape: ActivationShape?
    public private(set) var outputShape: ActivationShape?
    private var plannedTraining = false

    public init(_ layers: [Layer]) { self.layers = layers }

    /// Plans every layer for `input`; a no-op if already planned for it.
    @discardableResult
    public func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        if input == inputShape, training == plannedTraining, let o = outputShape { return o }
        var shape = input
        for layer in layers { shape = try layer.plan(input: shape, training: training) }
        inputShape = input; outputShape = shape; plannedTraining = training
        return shape
    }

    func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        var x = input
        for layer in layers { x = layer.forward(x, context) }
        return x
    }

    func backward(_ gradOutput: UnsafeMutablePointer<Float>, _ context: RunContext) {
        var g = gradOutput
        for (i, layer) in layers.enumerated().reversed() {
            guard let next = layer.backward(g, needInputGradient: i > 0, context) else { return }
            g = next
        }
    }
}
