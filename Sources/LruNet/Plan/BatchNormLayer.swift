/// BatchNormLayer as PyTorch (eps 1e-5, momentum 0.1). Inference uses the running statistics,
/// folded by the parameter cache into one scale and shift; training normalises with batch
/// statistics and updates the running ones.
package final class BatchNormLayer: Layer {
    package let name: String
    package let channels: Int
    package let eps: Float = 1e-5
    package let momentum: Float = 0.1
    package let refs: BatchNormRefs
    unowned let store: ParameterStore
    private var buffers = LayerBuffers()
    private var mean = FloatBuffer(count: 0), invStd = FloatBuffer(count: 0)
    private let pooled = PooledStatistics()
    /// The activation that followed in the description, applied in the same pass: set only by
    /// the inference rewrite (``FusionRewrite``), whose layers have no backward.
    package let activation: ActivationKind
    package var profileBucket: OpTimer? { .batchNorm }

    package convenience init(name: String, store: ParameterStore, channels: Int) {
        self.init(name: name, store: store, channels: channels, refs: BatchNormRefs(prefix: name, channels: channels, store: store),
                  activation: .none)
    }

    private init(name: String, store: ParameterStore, channels: Int, refs: BatchNormRefs, activation: ActivationKind) {
        self.name = name; self.channels = channels; self.store = store; self.refs = refs; self.activation = activation
    }

    /// The same BatchNorm followed by `activation` in one pass (inference only).
    package func followed(by activation: ActivationKind) -> BatchNormLayer {
        BatchNormLayer(name: name, store: store, channels: channels, refs: refs, activation: activation)
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        precondition(!training || activation == .none, "\(name): a fused inference layer cannot be planned for training")
        guard input.channels == channels else {
            throw PlanError.channelMismatch(layer: name, expected: channels, got: input.channels)
        }
        buffers.resize(input: input, output: input, training: training)
        if mean.count != channels { mean = FloatBuffer(count: channels); invStd = FloatBuffer(count: channels) }
        return input
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        buffers.savedInput = input
        let l = buffers.input.rowLength
        if context.training {
            let bn = trainingForm(context)
            if let group = context.pooledBatchNorm {
                pooledBatchNormStatistics(input, bn: bn, channels: channels, rowLength: l, memory: pooled, group: group,
                                          threading: context.threading)
                channelAffine(buffers.out, input, scale: pooled.scale.pointer, shift: pooled.shift.pointer,
                              channels: channels, rowLength: l, threading: context.threading)
            } else {
                batchNormTrainForward(buffers.out, input, bn: bn, channels: channels, rowLength: l, threading: context.threading)
            }
            return buffers.out
        }
        let (s, b) = context.cache.foldedBatchNorm(refs, eps: eps)
        channelAffine(buffers.out, input, scale: s, shift: b, activation: activation, channels: channels, rowLength: l,
                      threading: context.threading)
        return buffers.out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        if let group = context.pooledBatchNorm {
            let bn = BatchNormGradient(gamma: store.pointer(refs.weight), savedMean: mean.pointer, savedInvStd: invStd.pointer,
                                       gradGamma: store.gradient(refs.weight), gradBeta: store.gradient(refs.bias))
            let l = buffers.input.rowLength
            pooledBatchNormGradientSums(dy: gradOutput, x: buffers.savedInput!, bn: bn, channels: channels, rowLength: l,
                                        memory: pooled, group: group, threading: context.threading)
            pooledBatchNormBackward(dx: buffers.gradIn, dy: gradOutput, x: buffers.savedInput!, bn: bn, channels: channels,
                                    rowLength: l, memory: pooled, threading: context.threading)
            return buffers.gradIn
        }
        batchNormBackward(gradInput: buffers.gradIn, gradOutput: gradOutput, input: buffers.savedInput!,
                          savedMean: mean.pointer, savedInvStd: invStd.pointer, gamma: store.pointer(refs.weight),
                          gradGamma: store.gradient(refs.weight), gradBeta: store.gradient(refs.bias),
                          channels: channels, rowLength: buffers.input.rowLength, threading: context.threading)
        return buffers.gradIn
    }

    private func trainingForm(_ context: RunContext) -> BatchNormTraining {
        BatchNormTraining(gamma: context.cache.fetch(refs.weight), beta: context.cache.fetch(refs.bias),
                          savedMean: mean.pointer, savedInvStd: invStd.pointer,
                          runningMean: store.pointer(refs.runningMean), runningVar: store.pointer(refs.runningVar),
                          momentum: momentum, eps: eps)
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "batchnorm \(channels)", outputShape: buffers.output, parameters: 2 * channels, macs: [:])]
    }
}
