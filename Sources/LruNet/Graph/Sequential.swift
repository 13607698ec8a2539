/// Layers applied one after another; the model's graph.
public final class Sequential {
    public let layers: [Layer]
    public private(set) var inputShape: ActivationShape?
    public private(set) var outputShape: ActivationShape?
    private var plannedTraining = false
    /// Workspaces are sized for the worker pool's participants; a grown pool means a new plan.
    private var plannedParticipants = 0

    public init(_ layers: [Layer]) { self.layers = layers }

    /// Plans every layer for `input`; a no-op if already planned for it.
    @discardableResult
    public func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        let participants = WorkerPool.shared.participants
        if input == inputShape, training == plannedTraining, participants == plannedParticipants, let o = outputShape { return o }
        var shape = input
        fuseAroundReuseBlocks(!training)
        for layer in layers { shape = try layer.plan(input: shape, training: training) }
        inputShape = input; outputShape = shape; plannedTraining = training; plannedParticipants = participants
        fuseBatchNormReLU(!training)
        return shape
    }

    /// In inference a concat `[x, x]` before a reused block becomes an index map in the block's
    /// reads, and a reused block followed by LruNet's max pooling writes its output pooled, tile by
    /// tile, if its plan allows (see ``ReuseBlock/followingPool``). Set before the layers plan.
    private func fuseAroundReuseBlocks(_ fuse: Bool) {
        for (a, b) in zip(layers, layers.dropFirst()) {
            if let concat = a as? ConcatSelf, let block = b as? ReuseBlock {
                concat.readByIndexMap = fuse; block.inputRepeatsHalf = fuse
            }
            if let block = a as? ReuseBlock, let pool = b as? Pool2d {
                pool.inputAlreadyPooled = false          // the block's plan decides
                block.followingPool = fuse && pool.isFusableMaxPool ? pool : nil
            }
        }
    }

    /// In inference a BatchNorm followed by a ReLU runs as one pass (the BN's epilogue takes the
    /// ReLU); training keeps them apart, since backward needs the BN output.
    private func fuseBatchNormReLU(_ fuse: Bool) {
        for (a, b) in zip(layers, layers.dropFirst()) {
            guard let bn = a as? BatchNorm2d, let relu = b as? ReLU else { continue }
            bn.fusedReLU = fuse; relu.fusedIntoBatchNorm = fuse
        }
    }

    func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        var x = input
        for layer in layers {
            if let kind = Self.timer(for: layer) { x = context.timed(kind) { layer.forward(x, context) } }
            else { x = layer.forward(x, context) }
        }
        return x
    }

    /// The profile bucket of a layer; nil for composite layers that time their own parts.
    static func timer(for layer: Layer) -> OpTimer? {
        switch layer {
        case is ReuseBlock: return nil
        case let c as Conv2d: return c.geometry.kernelH * c.geometry.kernelW == 1 ? .pointwise : .im2colConv
        case is BatchNorm2d: return .batchNorm
        case is Pool2d, is ConcatSelf: return .poolShuffleConcat
        default: return .other
        }
    }

    func backward(_ gradOutput: UnsafeMutablePointer<Float>, _ context: RunContext) {
        var g = gradOutput
        for (i, layer) in layers.enumerated().reversed() {
            let kind = Self.timer(for: layer)
            let result = kind.map { k in context.timed(k) { layer.backward(g, needInputGradient: i > 0, context) } }
                ?? layer.backward(g, needInputGradient: i > 0, context)
            guard let next = result else { return }
            g = next
        }
    }
}
