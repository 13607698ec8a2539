/// What an inference convolution applies to its own output, fixed when the inference rewrite
/// builds it (``FusionRewrite``): the BatchNorm that followed it in the description (as the
/// folded scale and shift, one multiply-add per value), the residual add of the join it ends,
/// an activation, and the channel shuffle after it (each row written to its shuffled place);
/// or, ending a branch of a concat join, each row written to its place in the join's output.
/// One pass over the output instead of up to four.
package struct ConvEpilogue {
    package var batchNorm: BatchNormRefs?
    /// The enclosing residual join's input, when this epilogue does the join's add.
    package var residual: ResidualInput?
    package var activation: ActivationKind = .none
    /// 1x1 convolutions only.
    package var shuffle: ShuffleLayer.Kind?
    /// The concat join whose output this branch's rows go to (1x1 convolutions only).
    package var join: JoinTarget?

    package init() {}
    var isEmpty: Bool { batchNorm == nil && residual == nil && activation == .none && shuffle == nil && join == nil }
}

/// The output of a concat join that a branch's last 1x1 convolution writes into, so that the
/// join copies only its other branch (or nothing). The join and the convolution are built
/// holding the same one; the join fills in each row's place when it plans, and its output
/// buffer before its branches run.
package final class JoinTarget {
    var pointer: UnsafeMutablePointer<Float>?
    /// The join's output row of each of the branch's channels (after the join's shuffle).
    var destinations: [Int32] = []
    package init() {}
}

/// The input of a residual join whose add a convolution's epilogue does. The join and the
/// convolution are built holding the same one; each pass the join puts its input here before
/// its body runs.
package final class ResidualInput {
    var pointer: UnsafePointer<Float>?
    package init() {}
}

/// A convolution an inference epilogue can finish (Conv2dLayer, DepthwiseLayer).
package protocol EpilogueLayer: Layer {
    var epilogue: ConvEpilogue { get }
    /// Whether the epilogue can add a residual.
    var acceptsResidual: Bool { get }
    /// Whether it can write its rows shuffled.
    var acceptsShuffle: Bool { get }
    /// A new layer over the same weights that applies `epilogue` (inference only).
    func finished(by epilogue: ConvEpilogue) -> EpilogueLayer
}

extension EpilogueLayer {
    /// Applies the epilogue in place on `out` ([channels][rowLength]); nothing if it is empty.
    func applyEpilogue(_ out: UnsafeMutablePointer<Float>, channels: Int, rowLength: Int, _ context: RunContext) {
        guard !epilogue.isEmpty, let bn = epilogue.batchNorm else { return }
        let (scale, shift) = context.cache.foldedBatchNorm(bn, eps: 1e-5)
        channelAffine(out, out, scale: scale, shift: shift, residual: epilogue.residual?.pointer,
                      activation: epilogue.activation, channels: channels, rowLength: rowLength, threading: context.threading)
    }

    /// A layer with an epilogue is the inference rewrite's: it has no backward.
    func checkPlan(training: Bool) {
        precondition(!training || epilogue.isEmpty, "\(name): a fused inference layer cannot be planned for training")
    }
}
