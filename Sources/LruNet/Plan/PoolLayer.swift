/// Max or average pooling over each image plane. Max pooling pads with
/// -infinity; average pooling counts padding in the divisor (PyTorch's defaults).
package final class PoolLayer: Layer {
    package enum Mode: String, Sendable { case max, average }
    package let name: String
    package var profileBucket: OpTimer? { .poolShuffleConcat }
    package let mode: Mode
    package let geometry: ConvGeometry
    private var buffers = LayerBuffers()
    private var argmax: UnsafeMutablePointer<Int32>?
    private var argmaxCount = 0

    /// LruNet's pooling (max, 3x3, stride 2, padding 1), the one a reused block can fuse.
    var isFusableMaxPool: Bool { mode == .max && geometry == ConvGeometry(kernel: 3, stride: 2, padding: 1) }

    package init(name: String, mode: Mode, kernelSize: Int, stride: Int, padding: Int = 0) {
        precondition(padding * 2 <= kernelSize, "PoolLayer \(name): padding must be at most half the kernel")
        self.name = name; self.mode = mode
        geometry = ConvGeometry(kernel: kernelSize, stride: stride, padding: padding)
    }

    deinit { argmax?.deallocate() }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        let h = geometry.outputHeight(input.height), w = geometry.outputWidth(input.width)
        guard h > 0, w > 0 else { throw PlanError.tooSmall(layer: name, shape: input) }
        let out = ActivationShape(channels: input.channels, batch: input.batch, height: h, width: w)
        buffers.resize(input: input, output: out, training: training)
        let need = training && mode == .max ? out.count : 0
        if need != argmaxCount {
            argmax?.deallocate()
            argmax = need > 0 ? .allocate(capacity: need) : nil
            argmaxCount = need
        }
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        let i = buffers.input
        let planes = i.channels * i.batch
        switch mode {
        case .max:
            maxPoolForward(buffers.out, input, argmax: context.training ? argmax : nil, planes: planes,
                           height: i.height, width: i.width, geometry: geometry, threading: context.threading)
        case .average:
            avgPoolForward(buffers.out, input, planes: planes, height: i.height, width: i.width,
                           geometry: geometry, threading: context.threading)
        }
        return buffers.out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let i = buffers.input, o = buffers.output
        switch mode {
        case .max:
            maxPoolBackward(buffers.gradIn, gradOutput, argmax: argmax!, planes: i.channels * i.batch,
                            inputPlane: i.plane, outputPlane: o.plane, threading: context.threading)
        case .average:
            avgPoolBackward(buffers.gradIn, gradOutput, planes: i.channels * i.batch, height: i.height,
                            width: i.width, geometry: geometry, threading: context.threading)
        }
        return buffers.gradIn
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "\(mode == .max ? "maxpool" : "avgpool") \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.stride) p\(geometry.padding)",
                     outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
