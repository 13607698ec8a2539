/// What a convolution applies to its own output in inference when ``FusionPass`` folds its
/// neighbours into it: the BatchNorm that follows (as the folded scale and shift, one
/// multiply-add per value), a residual add (the input of the enclosing ``ResidualLayer``) and an
/// activation. One pass over the output instead of three.
package struct ConvEpilogue {
    package var batchNorm: BatchNormRefs?
    package var residual = false
    package var activation: ActivationKind = .none
    /// The channel shuffle after it: each row is written to its shuffled place (1x1 convolutions only).
    package var shuffle: ShuffleLayer?

    package init() {}
    var isEmpty: Bool { batchNorm == nil && !residual && activation == .none && shuffle == nil }
}

/// A layer whose output an inference epilogue can finish (Conv2dLayer, DepthwiseLayer).
package protocol EpilogueLayer: Layer {
    var epilogue: ConvEpilogue { get set }
    /// The residual to add, for this pass (set by the enclosing ``ResidualLayer`` when the epilogue adds it).
    var residualSource: UnsafePointer<Float>? { get set }
    /// Whether the epilogue can add a residual.
    var acceptsResidual: Bool { get }
}

extension EpilogueLayer {
    /// Applies the epilogue in place on `out` ([channels][rowLength]); nothing if it is empty.
    func applyEpilogue(_ out: UnsafeMutablePointer<Float>, channels: Int, rowLength: Int, _ context: RunContext) {
        guard !epilogue.isEmpty, let bn = epilogue.batchNorm else { return }
        let (scale, shift) = context.cache.foldedBatchNorm(bn, eps: 1e-5)
        channelAffine(out, out, scale: scale, shift: shift, residual: epilogue.residual ? residualSource : nil,
                      activation: epilogue.activation, channels: channels, rowLength: rowLength, threading: context.threading)
    }
}
