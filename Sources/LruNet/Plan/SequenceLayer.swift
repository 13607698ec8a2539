import Dispatch

/// Layers applied one after another; a layer itself, so sequences nest.
package final class SequenceLayer: Layer {
    package let name: String
    package let layers: [Layer]
    private var output = ActivationShape(channels: 0, batch: 0, height: 0, width: 0)

    package init(_ name: String = "", _ layers: [Layer]) { self.name = name; self.layers = layers }

    package var children: [Layer] { layers }
    package var profileBucket: OpTimer? { nil }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        var shape = input
        for layer in layers { shape = try layer.plan(input: shape, training: training) }
        output = shape
        return shape
    }

    /// Inference only: `oneThread[i]` runs layer i on the calling thread alone. The network sets
    /// it from timings at plan time (``Network/tunesThreadsPerLayer``) for layers whose result
    /// does not depend on the thread count, so it changes only the time.
    package var oneThread: [Bool] = []

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        var x = input
        for (i, layer) in layers.enumerated() {
            guard i < oneThread.count, oneThread[i], !context.training else { x = run(layer, x, context); continue }
            let all = context.threading
            context.threading = context.singleThread
            x = run(layer, x, context)
            context.threading = all
        }
        return x
    }

    @inline(__always)
    private func run(_ layer: Layer, _ x: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        guard let profile = context.profile else { return layer.forward(x, context) }
        // Leaves get a line of their own in the profile; containers time their children.
        let t0 = DispatchTime.now().uptimeNanoseconds
        let y = layer.profileBucket.map { kind in context.timed(kind) { layer.forward(x, context) } } ?? layer.forward(x, context)
        if layer.children.isEmpty { profile.add(layer: layer, since: t0) }
        return y
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        var g = gradOutput
        for (i, layer) in layers.enumerated().reversed() {
            let need = i > 0 || needInputGradient
            let result = layer.profileBucket.map { k in context.timed(k) { layer.backward(g, needInputGradient: need, context) } }
                ?? layer.backward(g, needInputGradient: need, context)
            guard let next = result else { return nil }
            g = next
        }
        return g
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        layers.reduce(input) { value, layer in layer.trace(value, trace) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        layers.reversed().reduce(gradOutput) { g, layer in layer.traceBackward(g, trace) }
    }

    package var summaries: [LayerSummary] { layers.flatMap(\.summaries) }
}
