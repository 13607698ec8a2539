/// 2-D convolution with any kernel, stride, padding and groups, as im2col + `sgemm` (1x1
/// stride-1 convolutions skip im2col). Weight layout is PyTorch's `[out, in/groups, kh, kw]`,
/// key `NAME.weight` (and `NAME.bias`).
package final class Conv2d: EpilogueLayer {
    package let name: String
    package let inputChannels: Int, outputChannels: Int, groups: Int
    package let geometry: ConvGeometry
    package let weight: ParameterRef
    package let bias: ParameterRef?
    unowned let store: ParameterStore
    private var buffers = LayerBuffers()
    private var shape: ConvShape?
    private var columns = FloatBuffer(count: 0)
    package var epilogue = ConvEpilogue()
    package var residualSource: UnsafePointer<Float>?
    package var acceptsResidual: Bool { true }

    /// - Parameters:
    ///   - name: PyTorch module path, the prefix of the state-dict keys.
    ///   - kernelSize: square kernel side.
    ///   - groups: must divide both channel counts.
    package init(name: String, store: ParameterStore, inputChannels: Int, outputChannels: Int,
                 kernelSize: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = false) {
        precondition(groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0,
                     "Conv2d \(name): groups \(groups) must divide \(inputChannels) and \(outputChannels)")
        self.name = name; self.store = store
        self.inputChannels = inputChannels; self.outputChannels = outputChannels; self.groups = groups
        geometry = ConvGeometry(kernel: kernelSize, stride: stride, padding: padding)
        let area = kernelSize * kernelSize
        weight = store.declare("\(name).weight", shape: [outputChannels, inputChannels / groups, kernelSize, kernelSize],
                               role: .convWeight, fanIn: inputChannels / groups * area, fanOut: outputChannels * area)
        self.bias = bias ? store.declare("\(name).bias", shape: [outputChannels], role: .convBias,
                                         fanIn: inputChannels / groups * area) : nil
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        guard input.channels == inputChannels else {
            throw PlanError.channelMismatch(layer: name, expected: inputChannels, got: input.channels)
        }
        let s = ConvShape(inChannels: inputChannels, outChannels: outputChannels, groups: groups, geometry: geometry,
                          batch: input.batch, height: input.height, width: input.width)
        guard s.outHeight > 0, s.outWidth > 0 else { throw PlanError.tooSmall(layer: name, shape: input) }
        shape = s
        if columns.count != s.columnBufferCount { columns = FloatBuffer(count: s.columnBufferCount) }
        let out = ActivationShape(channels: outputChannels, batch: input.batch, height: s.outHeight, width: s.outWidth)
        buffers.resize(input: input, output: out, training: training)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        buffers.savedInput = input
        let w = context.cache.fetch(weight)
        let b = bias.map { context.cache.fetch($0) }
        convForward(buffers.out.pointer, input, weight: w, bias: b, shape: shape!,
                    columns: columns.count > 0 ? columns.pointer : nil, threading: context.threading)
        if !context.training {
            applyEpilogue(buffers.out.pointer, channels: outputChannels, rowLength: buffers.output.rowLength, context)
        }
        return buffers.out.pointer
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let gin = needInputGradient ? buffers.gradIn.pointer : nil
        convBackward(gradInput: gin, gradWeight: store.gradient(weight), gradBias: bias.map(store.gradient),
                     gradOutput: gradOutput, input: buffers.savedInput!, weight: store.pointer(weight), shape: shape!,
                     columns: columns.count > 0 ? columns.pointer : nil, threading: context.threading)
        return gin
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
