/// Depthwise convolution (PyTorch's `Conv2dLayer` with `groups = in_channels`): each input channel
/// convolved with `multiplier` filters of its own, any square kernel, stride and padding.
/// Output channel `o` reads input channel `o / multiplier`. Weight `[C*mult, 1, k, k]`.
/// 3x3, stride 1, padding 1 runs the SIMD kernels (Kernels/Depthwise3x3.swift); other
/// geometries the direct loop.
package final class DepthwiseLayer: EpilogueLayer {
    package let name: String
    package let channels: Int, multiplier: Int
    package let geometry: ConvGeometry
    package let weight: ParameterRef
    unowned let store: ParameterStore
    private var buffers = LayerBuffers()
    private let scratch = Scratch()
    /// Empty in the description's lowering; the inference rewrite's fused layers carry one.
    package let epilogue: ConvEpilogue
    /// The kernel's epilogue applies BatchNorm and an activation only.
    package var acceptsResidual: Bool { false }
    package var acceptsShuffle: Bool { false }
    package var profileBucket: OpTimer? { .depthwise }

    package convenience init(name: String, store: ParameterStore, channels: Int, multiplier: Int = 1, kernelSize: Int = 3,
                             stride: Int = 1, padding: Int = 1) {
        precondition(channels > 0 && multiplier > 0, "DepthwiseLayer \(name): channels and multiplier must be positive")
        let area = kernelSize * kernelSize
        let weight = store.declare("\(name).weight", shape: [channels * multiplier, 1, kernelSize, kernelSize],
                                   role: .convWeight, fanIn: area, fanOut: channels * multiplier * area)
        self.init(name: name, store: store, channels: channels, multiplier: multiplier,
                  geometry: ConvGeometry(kernel: kernelSize, stride: stride, padding: padding), weight: weight, epilogue: ConvEpilogue())
    }

    private init(name: String, store: ParameterStore, channels: Int, multiplier: Int, geometry: ConvGeometry,
                 weight: ParameterRef, epilogue: ConvEpilogue) {
        self.name = name; self.store = store; self.channels = channels; self.multiplier = multiplier
        self.geometry = geometry; self.weight = weight; self.epilogue = epilogue
    }

    package func finished(by epilogue: ConvEpilogue) -> EpilogueLayer {
        precondition(epilogue.residual == nil && epilogue.shuffle == nil && epilogue.join == nil, "\(name): a depthwise epilogue takes BatchNorm and an activation only")
        return DepthwiseLayer(name: name, store: store, channels: channels, multiplier: multiplier, geometry: geometry,
                              weight: weight, epilogue: epilogue)
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        checkPlan(training: training)
        guard input.channels == channels else { throw PlanError.channelMismatch(layer: name, expected: channels, got: input.channels) }
        let ho = geometry.outputHeight(input.height), wo = geometry.outputWidth(input.width)
        guard ho > 0, wo > 0 else { throw PlanError.tooSmall(layer: name, shape: input) }
        let out = ActivationShape(channels: channels * multiplier, batch: input.batch, height: ho, width: wo)
        buffers.resize(input: input, output: out, training: training)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        buffers.savedInput = input
        let i = buffers.input, out = buffers.out
        var scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation = ActivationKind.none
        // The BatchNorm and activation ride in the kernel's own epilogue.
        if let bn = epilogue.batchNorm {
            (scale, shift) = context.cache.foldedBatchNorm(bn, eps: 1e-5)
            activation = epilogue.activation
        }
        depthwiseForward(out, input, context.cache.fetch(weight), channels: channels, multiplier: multiplier, batch: i.batch,
                         height: i.height, width: i.width, geometry: geometry, scale: scale, shift: shift,
                         activation: activation, scratch: scratch, threading: context.threading)
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let i = buffers.input
        let gin = needInputGradient ? buffers.gradIn : nil
        depthwiseBackward(gradInput: gin, gradWeight: store.gradient(weight), gradOutput: gradOutput, input: buffers.savedInput!,
                          weight: store.pointer(weight), channels: channels, multiplier: multiplier, batch: i.batch,
                          height: i.height, width: i.width, geometry: geometry, scratch: scratch, threading: context.threading)
        return gin
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        let o = buffers.output, k = geometry.kernelH * geometry.kernelW
        let m = multiplier > 1 ? " x\(multiplier)" : ""
        return [LayerSummary(name: name, op: "dw \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.stride) p\(geometry.padding) \(channels)\(m)",
                             outputShape: o, parameters: store.entry(weight).count, macs: [.depthwise: channels * multiplier * k * o.plane])]
    }
}
