/// A channel permutation. Two kinds, which differ:
/// - `groups(g)`, ShuffleNet's: view the C channels as `[g][C/g]`, transpose, flatten:
///   `out[k*g + j] = in[j*(C/g) + k]` (for g = 2, `out[2k] = in[k]`, `out[2k+1] = in[C/2 + k]`);
/// - `lruNetHalfSwap`, LruNet's 2-group shuffle with its halves swapped first:
///   `out[2k] = in[C/2 + k]`, `out[2k+1] = in[k]` (the reused block applies it inside).
/// In CNHW each channel is a contiguous row, so a shuffle copies rows.
package final class ShuffleLayer: Layer {
    package enum Kind: Equatable, Sendable {
        case groups(Int)
        case lruNetHalfSwap

        /// The input channel that output channel `c` comes from.
        package func source(_ c: Int, channels: Int) -> Int {
            switch self {
            case .groups(let g): return (c % g) * (channels / g) + c / g
            case .lruNetHalfSwap: return shuffleSource(c, channels: channels)
            }
        }

        /// Where input channel `c` goes: the inverse of ``source(_:channels:)``.
        package func destination(_ c: Int, channels: Int) -> Int {
            switch self {
            case .groups(let g): return (c % (channels / g)) * g + c / (channels / g)
            case .lruNetHalfSwap: return shuffleDestination(c, channels: channels)
            }
        }
    }
    package let name: String
    package var profileBucket: OpTimer? { .poolShuffleConcat }
    package let kind: Kind
    private var buffers = LayerBuffers()

    package init(name: String, kind: Kind) {
        if case .groups(let g) = kind { precondition(g >= 1, "ShuffleLayer \(name): groups must be at least 1") }
        self.name = name; self.kind = kind
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        let groups: Int
        switch kind {
        case .groups(let g): groups = g
        case .lruNetHalfSwap: groups = 2
        }
        guard input.channels % groups == 0 else {
            throw PlanError.channelMismatch(layer: name, expected: (input.channels / groups + 1) * groups, got: input.channels)
        }
        buffers.resize(input: input, output: input, training: training)
        return input
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        let c = buffers.input.channels, l = buffers.input.rowLength, out = buffers.out
        for o in 0..<c { (out + o * l).update(from: input + kind.source(o, channels: c) * l, count: l) }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let c = buffers.input.channels, l = buffers.input.rowLength, g = buffers.gradIn
        for o in 0..<c { (g + kind.source(o, channels: c) * l).update(from: gradOutput + o * l, count: l) }
        return g
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        let what: String
        switch kind {
        case .groups(let g): what = "shuffle g\(g)"
        case .lruNetHalfSwap: what = "shuffle (half swap)"
        }
        return [LayerSummary(name: name, op: what, outputShape: buffers.output, parameters: 0, macs: [:])]
    }
}
