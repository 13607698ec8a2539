/// The inference lowering: the description's layers rewritten so that neighbours which can run
/// as one pass are one layer, configured when it is built. The rewrite sets nothing on an
/// existing layer: it builds new layers over the same weights, and leaves the description's
/// lowering (which training runs, and which is the unfused reference) as it was. Layers no rule
/// touches are shared by the two trees; a network plans one tree at a time.
///
/// Rules, tried in this order at each position of a sequence (children are rewritten first):
/// 1. [`ConcatSelfLayer`] `ReuseBlock` [LruNet's max pool]: one block that reads channel c from
///    c mod C/2 (an index map, no copy) and pools its own output.
/// 2. a convolution, then `BatchNormLayer` [then `ReLU`/`ReLU6`] [then a `ShuffleLayer`, after
///    a 1x1 convolution]: one convolution whose epilogue applies the folded BatchNorm, the
///    activation and writes each row to its shuffled place.
/// 3. `BatchNormLayer` then `ReLU`/`ReLU6`: one pass.
/// 4. `ConcatLayer` then [`ReLU`/`ReLU6`] [`ShuffleLayer`]: the join's copy applies them
///    (ShuffleNet's ReLU after its stride-2 join, ShuffleNetV2's shuffle after every join).
/// 5. a `ResidualLayer` whose body ends in rule 2's convolution with no activation: that
///    epilogue also adds the residual and applies the join's activation.
/// 6. a `ConcatLayer` (after rule 4) whose branch ends in a 1x1 convolution: the convolution
///    writes its rows straight to their places in the join's output (through the join's
///    activation, if its own has none), and the join copies only the other branch.
/// A reused block's shared weights are never folded: its BatchNorms stay per iteration.
package enum FusionRewrite {
    /// One fusion: the rule and the layers it joined.
    package struct Decision: Equatable, CustomStringConvertible, Sendable {
        package let rule: String
        package let layers: [String]
        package var description: String { "\(rule): \(layers.joined(separator: " + "))" }
    }

    /// The inference tree of `root`, and what it fused.
    package static func inference(_ root: SequenceLayer) -> (root: SequenceLayer, decisions: [Decision]) {
        var decisions: [Decision] = []
        let rewritten = rewrite(root, &decisions) as! SequenceLayer
        return (rewritten, decisions)
    }

    private static func rewrite(_ layer: Layer, _ decisions: inout [Decision]) -> Layer {
        switch layer {
        case let s as SequenceLayer:
            return SequenceLayer(s.name, fuse(s.layers.map { rewrite($0, &decisions) }, &decisions))
        case let r as ResidualLayer:
            return residual(r, body: rewrite(r.body, &decisions), &decisions)
        case let c as ConcatLayer:
            return ConcatLayer(c.name, input: c.input, left: c.left.map { rewrite($0, &decisions) },
                               right: c.right.map { rewrite($0, &decisions) }, activation: c.activation, shuffle: c.shuffle)
        default:
            return layer
        }
    }

    /// A rule's result: the layer replacing `consumed` layers from the position tried.
    private typealias Match = (layer: Layer, consumed: Int, decisions: [Decision])

    private static func fuse(_ layers: [Layer], _ decisions: inout [Decision]) -> [Layer] {
        var out: [Layer] = [], i = 0
        while i < layers.count {
            let rest = layers[i...]
            if let m = reusedBlock(rest) ?? convolution(rest) ?? batchNorm(rest) ?? join(rest) {
                let (layer, joined) = (m.layer as? ConcatLayer).map(inPlace) ?? (m.layer, [])
                out.append(layer); decisions += m.decisions + joined; i += m.consumed
            } else if let concat = layers[i] as? ConcatLayer {
                let (layer, joined) = inPlace(concat)
                out.append(layer); decisions += joined; i += 1
            } else {
                out.append(layers[i]); i += 1
            }
        }
        return out
    }

    private static func reusedBlock(_ l: ArraySlice<Layer>) -> Match? {
        var k = l.startIndex
        let repeats = l[k] is ConcatSelfLayer && l.count > 1 && l[k + 1] is ReuseBlock
        if repeats { k += 1 }
        guard let block = l[k] as? ReuseBlock else { return nil }
        let pool = k + 1 < l.endIndex ? l[k + 1] as? PoolLayer : nil
        let pools = pool?.isFusableMaxPool == true
        guard repeats || pools else { return nil }
        var decisions: [Decision] = []
        if repeats { decisions.append(Decision(rule: "concat as index map", layers: [l[l.startIndex].name, block.name])) }
        if pools { decisions.append(Decision(rule: "pooled block output", layers: [block.name, pool!.name])) }
        return (block.inference(inputRepeatsHalf: repeats, poolsOutput: pools), k - l.startIndex + 1 + (pools ? 1 : 0), decisions)
    }

    private static func convolution(_ l: ArraySlice<Layer>) -> Match? {
        let s = l.startIndex
        guard let conv = l[s] as? EpilogueLayer, conv.epilogue.isEmpty, l.count > 1,
              let bn = l[s + 1] as? BatchNormLayer, bn.activation == .none else { return nil }
        var epilogue = ConvEpilogue()
        epilogue.batchNorm = bn.refs
        var joined = [conv.name, bn.name], k = s + 2
        if k < l.endIndex, let act = l[k] as? ActivationLayer {
            epilogue.activation = act.kind; joined.append(act.name); k += 1
        }
        if k < l.endIndex, let shuffle = l[k] as? ShuffleLayer, conv.acceptsShuffle {
            epilogue.shuffle = shuffle.kind; joined.append(shuffle.name); k += 1
        }
        return (conv.finished(by: epilogue), k - s, [Decision(rule: "conv epilogue", layers: joined)])
    }

    private static func batchNorm(_ l: ArraySlice<Layer>) -> Match? {
        let s = l.startIndex
        guard let bn = l[s] as? BatchNormLayer, bn.activation == .none, l.count > 1, let act = l[s + 1] as? ActivationLayer else { return nil }
        return (bn.followed(by: act.kind), 2, [Decision(rule: "batchnorm + activation", layers: [bn.name, act.name])])
    }

    private static func join(_ l: ArraySlice<Layer>) -> Match? {
        let s = l.startIndex
        guard let concat = l[s] as? ConcatLayer, concat.activation == .none, concat.shuffle == nil else { return nil }
        var activation = ActivationKind.none, shuffle: ShuffleLayer.Kind?, joined = [concat.name], k = s + 1
        if k < l.endIndex, let act = l[k] as? ActivationLayer { activation = act.kind; joined.append(act.name); k += 1 }
        if k < l.endIndex, let sh = l[k] as? ShuffleLayer { shuffle = sh.kind; joined.append(sh.name); k += 1 }
        guard k > s + 1 else { return nil }
        let rule = activation != .none && shuffle != nil ? "join + activation + shuffle" : activation != .none ? "join + activation" : "join + shuffle"
        return (ConcatLayer(concat.name, input: concat.input, left: concat.left, right: concat.right, activation: activation, shuffle: shuffle),
                k - s, [Decision(rule: rule, layers: joined)])
    }

    /// Rule 6: the join with each branch that can write into it doing so.
    private static func inPlace(_ concat: ConcatLayer) -> (Layer, [Decision]) {
        var decisions: [Decision] = []
        func writer(_ branch: Layer?) -> (branch: Layer?, target: JoinTarget?) {
            guard let sequence = branch as? SequenceLayer, let conv = sequence.layers.last as? EpilogueLayer, conv.acceptsShuffle,
                  conv.epilogue.shuffle == nil, conv.epilogue.residual == nil, conv.epilogue.join == nil,
                  concat.activation == .none || conv.epilogue.activation == .none else { return (branch, nil) }
            let target = JoinTarget()
            var epilogue = conv.epilogue
            epilogue.join = target
            if concat.activation != .none { epilogue.activation = concat.activation }
            decisions.append(Decision(rule: "branch written into the join", layers: [conv.name, concat.name]))
            return (SequenceLayer(sequence.name, sequence.layers.dropLast() + [conv.finished(by: epilogue)]), target)
        }
        let (left, l) = writer(concat.left), (right, r) = writer(concat.right)
        guard l != nil || r != nil else { return (concat, []) }
        return (ConcatLayer(concat.name, input: concat.input, left: left, right: right, activation: concat.activation,
                            shuffle: concat.shuffle, inPlace: (l, r)), decisions)
    }

    /// Rule 5, on a residual whose body is already rewritten.
    private static func residual(_ r: ResidualLayer, body: Layer, _ decisions: inout [Decision]) -> ResidualLayer {
        guard let sequence = body as? SequenceLayer, let conv = sequence.layers.last as? EpilogueLayer, conv.acceptsResidual,
              conv.epilogue.batchNorm != nil, conv.epilogue.activation == .none, conv.epilogue.shuffle == nil,
              conv.epilogue.residual == nil else {
            return ResidualLayer(r.name, body: body, activation: r.activation)
        }
        let input = ResidualInput()
        var epilogue = conv.epilogue
        epilogue.residual = input
        epilogue.activation = r.activation
        decisions.append(Decision(rule: "residual in conv epilogue", layers: [conv.name, r.name]))
        return ResidualLayer(r.name, body: SequenceLayer(sequence.name, sequence.layers.dropLast() + [conv.finished(by: epilogue)]),
                             activation: r.activation, addedInBody: input)
    }
}
