/// Counts of what one forward pass asked the parameter store for.
public struct FetchStats: Equatable, Sendable {
    /// Times a layer asked for a tensor: what an unrolled network (one copy per application) reads.
    public var requests = 0
    public var requestedBytes = 0
    /// Distinct tensors actually fetched (first request in the pass).
    public var fetches = 0
    public var fetchedBytes = 0
}

/// The parameter cache: during one forward pass every tensor is fetched from
/// the arena once, prepared if needed, and every later request in the pass
/// (the reuse iterations of a shared conv) reads that copy.
///
/// Preparation is where the fetch does real work: inference BatchNorm is folded
/// to a per-channel scale and shift, once per pass, so the fused epilogues
/// read two vectors instead of four. Shared conv weights are used in the
/// arena's layout, which already is the GEMM's A matrix per group.
///
/// The counters are the engine's MAC (memory access cost) report: requested
/// bytes are what an unrolled network with N distinct weight copies would
/// read; fetched bytes are what this network reads.
public final class ParameterCache {
    let store: ParameterStore
    private var fetchedInPass: [Int]
    private var pass = 1
    // Folded BatchNorms at their weight's index, [scale | shift] (an array, not a dictionary: a
    // batch-1 pass asks for ~80 of them, and hashing showed up in its profile).
    private var folded: [FloatBuffer?]
    /// Statistics for all tensors (conv weights, BN parameters and running statistics).
    public private(set) var all = FetchStats()
    /// Statistics for convolution weights and biases only (the spec's "conv weight bytes").
    public private(set) var conv = FetchStats()

    package init(store: ParameterStore) {
        self.store = store
        fetchedInPass = [Int](repeating: 0, count: store.entries.count)
        folded = Array(repeating: nil, count: store.entries.count)
    }

    /// Starts a new pass: later requests fetch again, and the counters restart.
    public func beginPass() {
        pass += 1
        all = FetchStats()
        conv = FetchStats()
    }

    private func count(_ ref: ParameterRef) -> Bool {
        let e = store.entries[ref.index]
        let bytes = e.count * MemoryLayout<Float>.size
        let first = fetchedInPass[ref.index] != pass
        all.requests += 1; all.requestedBytes += bytes
        if e.role.isConv { conv.requests += 1; conv.requestedBytes += bytes }
        if first {
            fetchedInPass[ref.index] = pass
            all.fetches += 1; all.fetchedBytes += bytes
            if e.role.isConv { conv.fetches += 1; conv.fetchedBytes += bytes }
        }
        return first
    }

    /// A tensor's values for this pass.
    package func fetch(_ ref: ParameterRef) -> UnsafePointer<Float> {
        _ = count(ref)
        return UnsafePointer(store.pointer(ref))
    }

    /// Inference BatchNorm as `(scale, shift)`, folded on the first request of the pass.
    package func foldedBatchNorm(_ bn: BatchNormRefs, eps: Float) -> (scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        let c = bn.channels
        let buffer: FloatBuffer
        if let b = folded[bn.weight.index] { buffer = b } else {
            buffer = FloatBuffer(count: 2 * c)   // allocated once, on the first pass ever
            folded[bn.weight.index] = buffer
        }
        // Count all four (no short-circuit); fold if this pass has not fetched them yet.
        let w = count(bn.weight), b = count(bn.bias), m = count(bn.runningMean), v = count(bn.runningVar)
        if w || b || m || v {
            batchNormFold(scale: buffer.pointer, shift: buffer.pointer + c,
                          gamma: store.pointer(bn.weight), beta: store.pointer(bn.bias),
                          mean: store.pointer(bn.runningMean), variance: store.pointer(bn.runningVar),
                          channels: c, eps: eps)
        }
        return (UnsafePointer(buffer.pointer), UnsafePointer(buffer.pointer + c))
    }
}

/// The four tensors of one BatchNorm2d, declared under PyTorch's names.
package struct BatchNormRefs {
    package let weight, bias, runningMean, runningVar: ParameterRef
    package let channels: Int

    package init(prefix: String, channels: Int, store: ParameterStore) {
        self.channels = channels
        weight = store.declare("\(prefix).weight", shape: [channels], role: .bnWeight)
        bias = store.declare("\(prefix).bias", shape: [channels], role: .bnBias)
        runningMean = store.declare("\(prefix).running_mean", shape: [channels], role: .runningMean)
        runningVar = store.declare("\(prefix).running_var", shape: [channels], role: .runningVar)
    }
}
