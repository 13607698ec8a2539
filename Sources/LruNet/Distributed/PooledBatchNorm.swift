import CLruNetKernels

// Synchronised BatchNorm: in training, each channel's batch statistics are pooled over every
// process of a data-parallel run, so K processes normalise with the statistics of the whole
// global batch, as one process would. Each BatchNorm becomes two phases with a sum over the
// processes between them: forward, the per-channel moments, then the normalisation; backward,
// sum(dy) and sum(dy*(x-mean)), then dx. The row kernels are C (body_rows.h). gamma's and beta's
// gradients accumulate only this process's share: the step's gradient sum adds the rest.

/// One layer's memory for the pooled sums ([channels][2] and the value count) and the
/// normalisation they give.
final class PooledStatistics {
    private var capacity = 0
    private(set) var sums = UnsafeMutablePointer<Double>.allocate(capacity: 1)
    private(set) var scale = FloatBuffer(count: 0), shift = FloatBuffer(count: 0)

    func reserve(channels: Int) {
        guard channels > capacity else { return }
        sums.deallocate()
        sums = .allocate(capacity: 2 * channels + 1)
        scale = FloatBuffer(count: channels); shift = FloatBuffer(count: channels)
        capacity = channels
    }

    deinit { sums.deallocate() }
}

/// Doubles a region writes (each participant its channels' sums).
typealias DoubleRows = SharedMutable<Double>

/// Forward phase 1: the moments of each channel row of `x` here, summed over `group`; then the
/// batch statistics saved in `bn`, its running statistics updated, and the normalisation left in
/// `memory.scale` and `memory.shift` for the caller's pass (with its residual and activation).
func pooledBatchNormStatistics(_ x: UnsafePointer<Float>, bn: BatchNormTraining, channels: Int, rowLength n: Int,
                               memory: PooledStatistics, group: ProcessGroup, threading: Threading) {
    memory.reserve(channels: channels)
    let sums = memory.sums
    let pass = MomentsPass(x: ConstRows(x), sums: DoubleRows(sums), rowLength: n)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), pass) { args, range in
        let r = args.pointee
        for c in range { lru_bn_row_moments(r.x + c * r.rowLength, r.rowLength, r.sums + 2 * c) }
    }
    sums[2 * channels] = Double(n)
    group.sum(sums, count: 2 * channels + 1, for: .batchNorm)
    withUnsafePointer(to: bn) { lru_bn_pooled_statistics($0, sums, channels, sums[2 * channels], memory.scale.pointer, memory.shift.pointer) }
}

/// Backward phase 1: each channel's sum(dy) and sum(dy*(x-mean)) here, summed over `group`
/// (into `memory.sums`); this process's share of gamma's and beta's gradients accumulates.
func pooledBatchNormGradientSums(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, bn: BatchNormGradient, channels: Int,
                                 rowLength n: Int, memory: PooledStatistics, group: ProcessGroup, threading: Threading) {
    memory.reserve(channels: channels)
    let sums = memory.sums
    let pass = GradientSumsPass(dy: ConstRows(dy), x: ConstRows(x), bn: bn, sums: DoubleRows(sums), rowLength: n)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), pass) { args, range in
        let r = args.pointee, n = r.rowLength
        withUnsafePointer(to: r.bn) { bn in
            for c in range { lru_bn_grad_row_sums(bn, r.dy + c * n, r.x + c * n, n, c, r.sums + 2 * c) }
        }
    }
    sums[2 * channels] = Double(n)
    group.sum(sums, count: 2 * channels + 1, for: .batchNorm)
}

extension lru_bn_grad {
    /// Backward phase 2 for channel `c`'s row, from the pooled sums. `dx` may be `dy` or `x`.
    @inline(__always)
    func pooledBackwardRow(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ n: Int,
                           channel c: Int, sums: UnsafePointer<Double>, channels: Int) {
        withUnsafePointer(to: self) { lru_bn_pooled_backward_row($0, dx, dy, x, n, c, sums, sums[2 * channels]) }
    }
}

/// Backward phase 2 over all channel rows.
func pooledBatchNormBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                             bn: BatchNormGradient, channels: Int, rowLength n: Int, memory: PooledStatistics,
                             threading: Threading) {
    let pass = PooledBackwardPass(dx: Rows(dx), dy: ConstRows(dy), x: ConstRows(x), bn: bn,
                                  sums: SharedConst(UnsafePointer(memory.sums)), channels: channels, rowLength: n)
    threading.parallelFor(channels, minPerThread: max(1, 16384 / max(n, 1)), pass) { args, range in
        let r = args.pointee, n = r.rowLength
        for c in range {
            r.bn.pooledBackwardRow(r.dx + c * n, dy: r.dy + c * n, x: r.x + c * n, n, channel: c, sums: r.sums.base, channels: r.channels)
        }
    }
}

/// Each thread its own channels' rows and sums.
private struct MomentsPass: Sendable { let x: ConstRows, sums: DoubleRows, rowLength: Int }
private struct GradientSumsPass: Sendable { let dy: ConstRows, x: ConstRows, bn: BatchNormGradient, sums: DoubleRows, rowLength: Int }
private struct PooledBackwardPass: Sendable {
    let dx: Rows, dy: ConstRows, x: ConstRows, bn: BatchNormGradient, sums: SharedConst<Double>, channels: Int, rowLength: Int
}
