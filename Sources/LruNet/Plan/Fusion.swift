/// The inference fusions, decided over the whole graph before it is planned: which neighbours
/// run as one pass. Each rule matches a pattern of neighbours in a sequence and hands the work
/// of the later ones to the first; the later ones then pass their input on. No layer sets
/// another's flags: only this pass does. Training runs every layer on its own (backward needs
/// each output), so for training the pass clears every fusion.
///
/// Rules, in the order they are tried:
/// 1. `ConcatSelfLayer` then `ReuseBlock`: the block reads channel c from c mod C/2 (an index map, no copy).
/// 2. `ReuseBlock` then LruNet's max pool: the block may pool as it writes its output (its plan
///    decides, for planes up to 16 wide).
/// 3. a convolution (`Conv2dLayer`, `DepthwiseLayer`) then `BatchNormLayer` [then `ReLU`/`ReLU6`]: the
///    convolution's epilogue applies the folded BatchNorm and the activation.
/// 4. `BatchNormLayer` then `ReLU`/`ReLU6`: one pass.
/// 5. a `ResidualLayer` whose body ends in rule 3's convolution and BatchNorm: that epilogue also
///    adds the residual (and takes the residual's activation).
/// 6. rule 3's 1x1 convolution then `ShuffleLayer`: the epilogue writes each row to its
///    shuffled place (ShuffleNet's shuffle after its first grouped 1x1).
/// 7. `ConcatLayer` then `ReLU`/`ShuffleLayer`: the join's copy applies them (ShuffleNet's ReLU
///    after its stride-2 join, ShuffleNetV2's shuffle after every join).
/// A reused block's shared weights are never folded: its BatchNorms stay per iteration.
package enum FusionPass {
    /// One fusion: the rule and the layers it joined.
    package struct Decision: Equatable, CustomStringConvertible, Sendable {
        package let rule: String
        package let layers: [String]
        package var description: String { "\(rule): \(layers.joined(separator: " + "))" }
    }

    /// Clears every fusion under `root`, then (for inference) applies the rules; returns what it fused.
    @discardableResult
    package static func apply(to root: Layer, inference: Bool) -> [Decision] {
        for layer in root.allLayers { reset(layer) }
        guard inference else { return [] }
        var decisions: [Decision] = []
        visit(root, &decisions)
        return decisions
    }

    private static func reset(_ layer: Layer) {
        switch layer {
        case let l as ConcatSelfLayer: l.readByIndexMap = false
        case let l as ReuseBlock: l.inputRepeatsHalf = false; l.fusedPool = nil
        case let l as PoolLayer: l.pooledBy = nil
        case let l as BatchNormLayer: l.passThrough = false; l.activation = .none
        case let l as ActivationLayer: l.passThrough = false
        case let l as ShuffleLayer: l.passThrough = false
        case let l as ConcatLayer: l.activation = .none; l.shuffle = nil
        case let l as ResidualLayer: l.fusedInto = nil
        case let l as EpilogueLayer: l.epilogue = ConvEpilogue(); l.residualSource = nil
        default: break
        }
    }

    /// Children first, so a residual sees its body's fusions.
    private static func visit(_ layer: Layer, _ decisions: inout [Decision]) {
        for child in layer.children { visit(child, &decisions) }
        if let sequence = layer as? SequenceLayer { fuse(sequence.layers, &decisions) }
        if let residual = layer as? ResidualLayer { fuse(residual, &decisions) }
    }

    private static func fuse(_ layers: [Layer], _ decisions: inout [Decision]) {
        for (i, a) in layers.enumerated() {
            let b = i + 1 < layers.count ? layers[i + 1] : nil, c = i + 2 < layers.count ? layers[i + 2] : nil
            switch (a, b) {
            case let (concat as ConcatSelfLayer, block as ReuseBlock):
                concat.readByIndexMap = true; block.inputRepeatsHalf = true
                decisions.append(Decision(rule: "concat as index map", layers: [concat.name, block.name]))
            case let (block as ReuseBlock, pool as PoolLayer) where pool.isFusableMaxPool:
                block.fusedPool = pool; pool.pooledBy = block
                decisions.append(Decision(rule: "pooled block output", layers: [block.name, pool.name]))
            case let (conv as EpilogueLayer, bn as BatchNormLayer):
                conv.epilogue.batchNorm = bn.refs; bn.passThrough = true
                var joined = [conv.name, bn.name], next = c
                if let act = c as? ActivationLayer {
                    conv.epilogue.activation = act.kind; act.passThrough = true
                    joined.append(act.name)
                    next = i + 3 < layers.count ? layers[i + 3] : nil
                }
                if let shuffle = next as? ShuffleLayer, let pointwise = conv as? Conv2dLayer, pointwise.isPointwise1x1 {
                    conv.epilogue.shuffle = shuffle; shuffle.passThrough = true
                    joined.append(shuffle.name)
                }
                decisions.append(Decision(rule: "conv epilogue", layers: joined))
            case let (bn as BatchNormLayer, act as ActivationLayer) where !bn.passThrough:
                bn.activation = act.kind; act.passThrough = true
                decisions.append(Decision(rule: "batchnorm + activation", layers: [bn.name, act.name]))
            case let (concat as ConcatLayer, act as ActivationLayer):
                concat.activation = act.kind; act.passThrough = true
                decisions.append(Decision(rule: "join + activation", layers: [concat.name, act.name]))
            case let (concat as ConcatLayer, shuffle as ShuffleLayer):
                concat.shuffle = shuffle; shuffle.passThrough = true
                decisions.append(Decision(rule: "join + shuffle", layers: [concat.name, shuffle.name]))
            default: break
            }
        }
    }

    private static func fuse(_ residual: ResidualLayer, _ decisions: inout [Decision]) {
        guard let body = residual.body as? SequenceLayer, body.layers.count >= 2,
              let bn = body.layers.last as? BatchNormLayer, bn.passThrough,
              let conv = body.layers[body.layers.count - 2] as? EpilogueLayer, conv.acceptsResidual,
              conv.epilogue.batchNorm != nil, conv.epilogue.activation == .none else { return }
        conv.epilogue.residual = true
        conv.epilogue.activation = residual.activation
        residual.fusedInto = conv
        decisions.append(Decision(rule: "residual in conv epilogue", layers: [conv.name, bn.name, residual.name]))
    }
}
