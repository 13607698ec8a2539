import CLruNetKernels

/// `act(body(x) + x)`: a residual add around a body (MobileNetV2's inverted residual with no
/// activation, ShuffleNet's stride-1 unit with a ReLU). Backward sums the two paths' gradients.
///
/// In the inference rewrite (``FusionRewrite``) the add (and the activation) may be the
/// epilogue of the body's last convolution, built holding this join's ``ResidualInput``: the
/// join then only hands its input over.
package final class ResidualLayer: Layer {
    package let name: String
    package let body: Layer
    package let activation: ActivationKind
    /// Set when the body's last convolution does the add (inference only).
    package let addedInBody: ResidualInput?
    private var buffers = LayerBuffers()
    /// Training with an activation: the gradient through it, which both paths read.
    private var gradBody = ArenaSlot()

    package init(_ name: String, body: Layer, activation: ActivationKind = .none, addedInBody: ResidualInput? = nil) {
        self.name = name; self.body = body; self.activation = activation; self.addedInBody = addedInBody
    }

    package var children: [Layer] { [body] }
    package var profileBucket: OpTimer? { nil }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        precondition(!training || addedInBody == nil, "\(name): a fused inference layer cannot be planned for training")
        let out = try body.plan(input: input, training: training)
        guard out == input else { throw PlanError.branchMismatch(layer: name, left: out, right: input) }
        buffers.resize(input: input, output: input, training: training, ownsOutput: addedInBody == nil)
        gradBody.reset(count: training && activation != .none ? input.count : 0)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        if let addedInBody {
            addedInBody.pointer = UnsafePointer(input)
            return body.forward(input, context)
        }
        let y = body.forward(input, context), out = buffers.out
        let count = buffers.output.count
        context.timed(.batchNorm) {
            let pass = ResidualAdd(out: Rows(out), body: ConstRows(y), input: ConstRows(input), activation: activation, count: count)
            context.threading.parallelFor(count / 4096 + 1, pass) { args, blocks in
                let r = args.pointee
                let lo = blocks.lowerBound * 4096, hi = min(r.count, blocks.upperBound * 4096)
                lru_row_affine(r.out + lo, r.body + lo, hi - lo, 1, 0, r.input + lo, r.activation.rawValue)
            }
        }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let count = buffers.output.count
        var g = UnsafeMutablePointer(gradOutput)
        if activation != .none {            // through the activation first: both paths share it
            activationBackward(gradBody.pointer, gradOutput, output: buffers.out, kind: activation, count: count,
                               threading: context.threading)
            g = gradBody.pointer
        }
        guard let gx = body.backward(g, needInputGradient: true, context) else { return nil }
        rowAdd(buffers.gradIn, gx, g, count)
        return buffers.gradIn
    }

    /// The input lives through the body: the add (or the fused epilogue, the body's last step) reads it.
    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        let y = body.trace(input, trace)
        guard buffers.outputCount > 0 else { trace.use(input); return y }
        return trace.produce(count: buffers.outputCount, reading: [y, input]) { [unowned self] in self.buffers.place($0) }
    }

    /// The gradient into the body (through the activation) lives until the add reads it again.
    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        let g = trace.leaf(gradOutput, count: gradBody.count) { [unowned self] in self.gradBody.place($0) }
        let gx = body.traceBackward(g, trace)
        return trace.produce(count: buffers.gradientCount, reading: [gx, g]) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        body.summaries + [LayerSummary(name: name, op: "residual add" + (activation == .relu ? ", relu" : ""),
                                       outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}

/// `act(body + input)`, each thread its own blocks of 4096 values.
private struct ResidualAdd: Sendable {
    let out: Rows, body: ConstRows, input: ConstRows
    let activation: ActivationKind, count: Int
}
