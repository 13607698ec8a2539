/// Max or average pooling over each image plane. Max pooling pads with
/// -infinity; average pooling counts padding in the divisor (PyTorch's defaults).
public final class Pool2d: Layer {
    public enum Mode: String, Sendable { case max, average }
    public let name: String
    public let mode: Mode
    public let geometry: ConvGeometry
    private var buffers = LayerBuffers()
    private var argmax: UnsafeMutablePointer<Int32>?
    private var argmaxCount = 0
    /// In inference the reused block before this pool writes its output already pooled
    /// (``ReuseBlock`` sets this when it can); the pool then passes its input on.
    var inputAlreadyPooled = false

    /// LruNet's pooling (max, 3x3, stride 2, padding 1), the one a reused block can fuse.
    var isFusableMaxPool: Bool { mode == .max && geometry == ConvGeometry(kernel: 3, stride: 2, padding: 1) }

    public init(name: String, mode: Mode, kernelSize: Int, stride: Int, padding: Int = 0) {
        precondition(padding * 2 <= kernelSize, "Pool2d \(name): padding must be at most half the kernel")
        self.name = name; self.mode = mode
        geometry = ConvGeometry(kernel: kernelSize, stride: stride, padding: padding)
    }

    deinit { argmax?.deallocate() }

    public func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        let h = geometry.outputHeight(input.height), w = geometry.outputWidth(input.width)
        guard h > 0, w > 0 else { throw PlanError.tooSmall(layer: name, shape: input.description) }
        let out = ActivationShape(channels: input.channels, batch: input.batch, height: h, width: w)
        // The block before it sets `inputAlreadyPooled` in its own plan, which runs first.
        buffers.resize(input: input, output: out, training: training, ownsOutput: training || !inputAlreadyPooled)
        let need = training && mode == .max ? out.count : 0
        if need != argmaxCount {
            argmax?.deallocate()
            argmax = need > 0 ? .allocate(capacity: need) : nil
            argmaxCount = need
        }
        return out
    }

    public func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        if inputAlreadyPooled && !context.training { return input }
        let i = buffers.input
        let planes = i.channels * i.batch
        switch mode {
        case .max:
            maxPoolForward(buffers.out.pointer, input, argmax: context.training ? argmax : nil, planes: planes,
                           height: i.height, width: i.width, geometry: geometry, threading: context.threading)
        case .average:
            avgPoolForward(buffers.out.pointer, input, planes: planes, height: i.height, width: i.width,
                           geometry: geometry, threading: context.threading)
        }
        return buffers.out.pointer
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let i = buffers.input, o = buffers.output
        switch mode {
        case .max:
            maxPoolBackward(buffers.gradIn.pointer, gradOutput, argmax: argmax!, planes: i.channels * i.batch,
                            inputPlane: i.plane, outputPlane: o.plane, threading: context.threading)
        case .average:
            avgPoolBackward(buffers.gradIn.pointer, gradOutput, planes: i.channels * i.batch, height: i.height,
                            width: i.width, geometry: geometry, threading: context.threading)
        }
        return buffers.gradIn.pointer
    }

    public var summary: LayerSummary {
        LayerSummary(name: name, op: "\(mode == .max ? "maxpool" : "avgpool") \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.stride) p\(geometry.padding)",
                     outputShape: buffers.output, parameters: 0, macs: [:])
    }
}
