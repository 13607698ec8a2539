import CLruNetKernels

/// Two branches joined by concatenation along channels: `[left(xl), right(xr)]`.
///
/// - `.fork`: both branches read the whole input (ShuffleNet's stride-2 unit: the bottleneck
///   and an average-pool shortcut; ShuffleNetV2's down block). Backward sums their gradients.
/// - `.split`: the left branch reads channels `[0, C/2)`, the right `[C/2, C)` (ShuffleNetV2's
///   basic block: a channel split). Backward concatenates their gradients.
///
/// A nil branch is the identity. In CNHW the halves and the concatenation are row ranges:
/// the split costs nothing and the join is two copies.
package final class ConcatLayer: Layer {
    package enum Input: Sendable { case fork, split }
    package let name: String
    package let input: Input
    package let left: Layer?, right: Layer?
    private var buffers = LayerBuffers()
    private var leftShape = ActivationShape(channels: 0, batch: 0, height: 0, width: 0)
    private var savedInput: UnsafeMutablePointer<Float>?
    /// The activation and the channel shuffle that followed in the description, done in the
    /// join's copy: set only by the inference rewrite (``FusionRewrite``).
    package let activation: ActivationKind
    package let shuffle: ShuffleLayer.Kind?
    /// The branches whose last 1x1 convolution writes straight into the output (inference
    /// rewrite only): the join copies the other branch's rows, or nothing.
    package let inPlace: (left: JoinTarget?, right: JoinTarget?)

    package init(_ name: String, input: Input, left: Layer?, right: Layer?, activation: ActivationKind = .none,
                 shuffle: ShuffleLayer.Kind? = nil, inPlace: (left: JoinTarget?, right: JoinTarget?) = (nil, nil)) {
        precondition((inPlace.left == nil || left != nil) && (inPlace.right == nil || right != nil),
                     "\(name): only a branch with a convolution writes into the join")
        self.name = name; self.input = input; self.left = left; self.right = right
        self.activation = activation; self.shuffle = shuffle; self.inPlace = inPlace
    }

    private var writesInPlace: Bool { inPlace.left != nil || inPlace.right != nil }

    package var children: [Layer] { [left, right].compactMap { $0 } }
    package var profileBucket: OpTimer? { nil }

    package func plan(input shape: ActivationShape, training: Bool) throws -> ActivationShape {
        precondition(!training || (activation == .none && shuffle == nil && !writesInPlace),
                     "\(name): a fused inference layer cannot be planned for training")
        var part = shape
        if input == .split {
            guard shape.channels % 2 == 0 else { throw PlanError.channelMismatch(layer: name, expected: shape.channels + 1, got: shape.channels) }
            part.channels /= 2
        }
        let l = try left?.plan(input: part, training: training) ?? part
        let r = try right?.plan(input: part, training: training) ?? part
        guard l.batch == r.batch, l.height == r.height, l.width == r.width else {
            throw PlanError.branchMismatch(layer: name, left: l, right: r)
        }
        leftShape = l
        let out = ActivationShape(channels: l.channels + r.channels, batch: l.batch, height: l.height, width: l.width)
        buffers.resize(input: shape, output: out, training: training)
        for (target, first, count) in [(inPlace.left, 0, l.channels), (inPlace.right, l.channels, r.channels)] {
            target?.destinations = (first..<first + count).map { Int32(shuffle?.destination($0, channels: out.channels) ?? $0) }
        }
        return out
    }

    package func forward(_ x: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        savedInput = x
        let half = input == .split ? buffers.input.count / 2 : 0
        let out = buffers.out, l = buffers.output.rowLength
        inPlace.left?.pointer = out; inPlace.right?.pointer = out
        let yl = left?.forward(x, context) ?? x
        let yr = right?.forward(x + half, context) ?? x + half
        // The channels left to copy: those of the branches that did not write in place.
        let leftChannels = leftShape.channels, channels = buffers.output.channels
        let first = inPlace.left != nil ? leftChannels : 0, end = inPlace.right != nil ? leftChannels : channels
        guard first < end else { return out }
        // Row by row (to the shuffled place, through the activation), the rows split between the
        // threads: the join copies the whole output, memory-bound work one core cannot saturate.
        let pass = JoinPass(out: Rows(out), left: ConstRows(yl), right: ConstRows(yr), rowLength: l, channels: channels,
                            leftChannels: leftChannels, first: first, shuffle: shuffle, activation: activation)
        context.timed(.poolShuffleConcat) {
            context.threading.parallelFor(end - first, minPerThread: max(1, 16384 / max(l, 1)), pass) { args, rows in
                let r = args.pointee, l = r.rowLength
                for ch in rows.lowerBound + r.first ..< rows.upperBound + r.first {
                    let src = ch < r.leftChannels ? r.left + ch * l : r.right + (ch - r.leftChannels) * l
                    let dst = r.out + (r.shuffle?.destination(ch, channels: r.channels) ?? ch) * l
                    if r.activation == .none { dst.update(from: src, count: l) }
                    else { lru_row_affine(dst, src, l, 1, 0, nil, r.activation.rawValue) }
                }
            }
        }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let gl = gradOutput, gr = gradOutput + leftShape.count
        let dl = left.map { $0.backward(gl, needInputGradient: true, context)! } ?? gl
        let dr = right.map { $0.backward(gr, needInputGradient: true, context)! } ?? gr
        let gin = buffers.gradIn, count = buffers.input.count
        switch input {
        case .fork: rowAdd(gin, dl, dr, count)                      // both read x: the gradients add
        case .split:
            gin.update(from: dl, count: count / 2)
            (gin + count / 2).update(from: dr, count: count / 2)
        }
        return gin
    }

    /// The branches run one after the other: the left's output and the input live until the join.
    /// A branch that writes into the output needs it placed (alive) before the branches run.
    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        guard writesInPlace else {
            let l = left?.trace(input, trace) ?? input
            let r = right?.trace(input, trace) ?? input
            return trace.produce(count: buffers.outputCount, reading: [l, r, input]) { [unowned self] in self.buffers.place($0) }
        }
        let out = trace.produce(count: buffers.outputCount, reading: [input]) { [unowned self] in self.buffers.place($0) }
        let l = left?.trace(input, trace) ?? input
        let r = right?.trace(input, trace) ?? input
        trace.read([inPlace.left == nil ? l : nil, inPlace.right == nil ? r : nil, input])
        return out
    }

    /// Each branch reads its part of the output gradient; the join reads both branches' results.
    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        let l = left?.traceBackward(gradOutput, trace) ?? gradOutput
        let r = right?.traceBackward(gradOutput, trace) ?? gradOutput
        return trace.produce(count: buffers.gradientCount, reading: [l, r, gradOutput]) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        (left?.summaries ?? []) + (right?.summaries ?? [])
            + [LayerSummary(name: name, op: input == .split ? "split, concat" : "concat branches", outputShape: buffers.output,
                            parameters: 0, macs: [:])]
    }
}

/// The join's rows: each thread its own output channels.
private struct JoinPass: Sendable {
    let out: Rows, left: ConstRows, right: ConstRows
    let rowLength: Int, channels: Int, leftChannels: Int
    /// The first channel copied (the rows handed out count from it).
    let first: Int
    let shuffle: ShuffleLayer.Kind?
    let activation: ActivationKind
}
