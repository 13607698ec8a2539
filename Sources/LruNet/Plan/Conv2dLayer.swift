/// 2-D convolution with any kernel, stride, padding and groups, as im2col + `sgemm` (1x1
/// stride-1 convolutions skip im2col). Weight layout is PyTorch's `[out, in/groups, kh, kw]`,
/// key `NAME.weight` (and `NAME.bias`).
package final class Conv2dLayer: EpilogueLayer {
    package let name: String
    package let inputChannels: Int, outputChannels: Int, groups: Int
    package let geometry: ConvGeometry
    package let weight: ParameterRef
    package let bias: ParameterRef?
    unowned let store: ParameterStore
    private var buffers = LayerBuffers()
    private var shape: ConvShape?
    private var columns = FloatBuffer(count: 0)
    /// Each output channel's shuffled place, when the epilogue writes shuffled.
    private var destinations: [Int32] = []
    /// A one-channel 3x3 stem (stride 1 or 2) runs as a depthwise conv with multiplier C_out (no im2col).
    private let stemScratch = Scratch()
    /// Empty in the description's lowering; the inference rewrite's fused layers carry one.
    package let epilogue: ConvEpilogue
    package var acceptsResidual: Bool { true }
    package var acceptsShuffle: Bool { isPointwise1x1 }
    package var profileBucket: OpTimer? { geometry.kernelH * geometry.kernelW == 1 ? .pointwise : .im2colConv }

    /// - Parameters:
    ///   - name: PyTorch module path, the prefix of the state-dict keys.
    ///   - kernelSize: square kernel side.
    ///   - groups: must divide both channel counts.
    package convenience init(name: String, store: ParameterStore, inputChannels: Int, outputChannels: Int,
                             kernelSize: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = false) {
        precondition(groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0,
                     "Conv2dLayer \(name): groups \(groups) must divide \(inputChannels) and \(outputChannels)")
        let area = kernelSize * kernelSize
        let weight = store.declare("\(name).weight", shape: [outputChannels, inputChannels / groups, kernelSize, kernelSize],
                                   role: .convWeight, fanIn: inputChannels / groups * area, fanOut: outputChannels * area)
        let biasRef = bias ? store.declare("\(name).bias", shape: [outputChannels], role: .convBias,
                                           fanIn: inputChannels / groups * area) : nil
        self.init(name: name, store: store, inputChannels: inputChannels, outputChannels: outputChannels,
                  geometry: ConvGeometry(kernel: kernelSize, stride: stride, padding: padding), groups: groups,
                  weight: weight, bias: biasRef, epilogue: ConvEpilogue())
    }

    private init(name: String, store: ParameterStore, inputChannels: Int, outputChannels: Int, geometry: ConvGeometry,
                 groups: Int, weight: ParameterRef, bias: ParameterRef?, epilogue: ConvEpilogue) {
        self.name = name; self.store = store
        self.inputChannels = inputChannels; self.outputChannels = outputChannels; self.groups = groups
        self.geometry = geometry; self.weight = weight; self.bias = bias; self.epilogue = epilogue
    }

    package func finished(by epilogue: ConvEpilogue) -> EpilogueLayer {
        precondition((epilogue.shuffle == nil && epilogue.join == nil) || acceptsShuffle, "\(name): only a 1x1 convolution writes rows elsewhere")
        return Conv2dLayer(name: name, store: store, inputChannels: inputChannels, outputChannels: outputChannels,
                           geometry: geometry, groups: groups, weight: weight, bias: bias, epilogue: epilogue)
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        checkPlan(training: training)
        guard input.channels == inputChannels else {
            throw PlanError.channelMismatch(layer: name, expected: inputChannels, got: input.channels)
        }
        let s = ConvShape(inChannels: inputChannels, outChannels: outputChannels, groups: groups, geometry: geometry,
                          batch: input.batch, height: input.height, width: input.width)
        guard s.outHeight > 0, s.outWidth > 0 else { throw PlanError.tooSmall(layer: name, shape: input) }
        shape = s
        if columns.count != s.columnBufferCount { columns = FloatBuffer(count: s.columnBufferCount) }
        let out = ActivationShape(channels: outputChannels, batch: input.batch, height: s.outHeight, width: s.outWidth)
        // Writing into a join, the layer has no output buffer of its own.
        buffers.resize(input: input, output: out, training: training, ownsOutput: epilogue.join == nil)
        destinations = epilogue.shuffle.map { sh in (0..<outputChannels).map { Int32(sh.destination($0, channels: outputChannels)) } } ?? []
        return out
    }

    /// A 1x1, stride 1, no padding, no bias: the kind whose inference epilogue can write shuffled rows.
    package var isPointwise1x1: Bool { geometry == ConvGeometry(kernel: 1) && bias == nil }

    /// 3x3, stride 1 or 2, padding 1 on a single input channel: a depthwise conv with multiplier C_out.
    private var isOneChannelStem: Bool {
        inputChannels == 1 && groups == 1 && bias == nil
            && (geometry == ConvGeometry(kernel: 3, stride: 1, padding: 1) || geometry == ConvGeometry(kernel: 3, stride: 2, padding: 1))
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        buffers.savedInput = input
        let w = context.cache.fetch(weight), s = shape!
        let folded = epilogue.batchNorm.map { context.cache.foldedBatchNorm($0, eps: 1e-5) }
        let activation = epilogue.activation
        if !context.training && s.isPointwise && bias == nil {
            // Inference 1x1: our GEMM with the epilogue (and the shuffle, or the join's places) in its stores.
            // Into a join, the join has set its output (the layer has no buffer of its own).
            let out = epilogue.join.map { $0.pointer! } ?? buffers.out
            (epilogue.join?.destinations ?? destinations).withUnsafeBufferPointer { dest in
                pointwiseForward(out, input, weight: w, inChannels: inputChannels, outChannels: outputChannels, groups: groups,
                                 rowLength: buffers.output.rowLength, scale: folded?.scale, shift: folded?.shift,
                                 residual: epilogue.residual?.pointer, activation: activation,
                                 destinations: dest.isEmpty ? nil : dest.baseAddress, threading: context.threading)
            }
            return out
        }
        let out = buffers.out
        if isOneChannelStem && epilogue.residual == nil {
            depthwiseForward(out, input, w, channels: 1, multiplier: outputChannels, batch: s.batch, height: s.height, width: s.width,
                             geometry: geometry, scale: folded?.scale, shift: folded?.shift, activation: activation,
                             scratch: stemScratch, threading: context.threading)
            return out
        }
        let b = bias.map { context.cache.fetch($0) }
        convForward(out, input, weight: w, bias: b, shape: s, columns: columns.count > 0 ? columns.pointer : nil,
                    threading: context.threading)
        applyEpilogue(out, channels: outputChannels, rowLength: buffers.output.rowLength, context)
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let gin = needInputGradient ? buffers.gradIn : nil
        convBackward(gradInput: gin, gradWeight: store.gradient(weight), gradBias: bias.map(store.gradient),
                     gradOutput: gradOutput, input: buffers.savedInput!, weight: store.pointer(weight), shape: shape!,
                     columns: columns.count > 0 ? columns.pointer : nil, threading: context.threading)
        return gin
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        // Writing into a join (placed by the join), the layer only reads.
        if epilogue.join != nil { trace.read([input]); return input }
        return trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        let o = buffers.output
        let k = geometry.kernelH * geometry.kernelW
        let macs = outputChannels * (inputChannels / groups) * k * o.plane
        let kind: OpKind = k == 1 ? .pointwise : .conv
        let g = groups > 1 ? " g\(groups)" : ""
        return [LayerSummary(name: name,
                             op: "conv \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.stride) p\(geometry.padding) \(inputChannels)->\(outputChannels)\(g)\(bias != nil ? " +bias" : "")",
                             outputShape: o, parameters: store.entry(weight).count + (bias.map { store.entry($0).count } ?? 0),
                             macs: [kind: macs])]
    }
}
