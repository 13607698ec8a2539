import XCTest
import Foundation
@testable import LruNet

/// Synchronised BatchNorm's kernels: K processes, each with a share of the batch, give what
/// the one-process kernels give on the whole batch (outputs, saved and running statistics,
/// input and parameter gradients), on every kernel path.
final class PooledBatchNormTests: XCTestCase {
    /// Runs `body(rank, group)` on `size` threads at once.
    private func together(_ size: Int, _ body: @escaping @Sendable (Int, ProcessGroup) -> Void) {
        let groups = ThreadCollectives.group(size: size)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let g = groups[r]
            Thread { body(r, g); done.leave() }.start()
        }
        done.wait()
    }

    func testPooledStatisticsAndGradientsMatchOneProcess() throws {
        let before = InstructionSet.active
        defer { try? InstructionSet.use(before) }
        for isa in InstructionSet.supported {
            try InstructionSet.use(isa)
            for (channels, images, plane, size) in [(3, 6, 25, 2), (5, 9, 7, 3), (16, 4, 1, 2), (2, 11, 49, 2)] {
                try check(channels: channels, images: images, plane: plane, processes: size, isa: isa)
            }
        }
    }

    private func check(channels c: Int, images n: Int, plane: Int, processes k: Int, isa: InstructionSet) throws {
        var rng = SplitMix64(seed: UInt64(c * 100 + n))
        // NCHW-ordered batch, shifted so the mean is far from 0 (the pooled variance must not cancel).
        let x = randomArray(n * c * plane, &rng).map { 3 + 2 * $0 }, dy = randomArray(n * c * plane, &rng)
        let gamma = randomArray(c, &rng).map { 1 + $0 / 2 }, beta = randomArray(c, &rng)
        // One process, the whole batch: CNHW rows of n*plane values.
        let rows = toCNHW(x, n: n, c: c, plane: plane), dyRows = toCNHW(dy, n: n, c: c, plane: plane)
        var out = [Float](repeating: 0, count: rows.count), dx = out
        var mean = [Float](repeating: 0, count: c), inv = mean, rm = mean, rv = [Float](repeating: 1, count: c)
        var gg = [Float](repeating: 0, count: c), gb = gg
        batchNormTrainForward(&out, rows, gamma: gamma, beta: beta, savedMean: &mean, savedInvStd: &inv, runningMean: &rm,
                              runningVar: &rv, momentum: 0.1, eps: 1e-5, channels: c, rowLength: n * plane, threading: Threading(threads: 1))
        batchNormBackward(gradInput: &dx, gradOutput: dyRows, input: rows, savedMean: mean, savedInvStd: inv, gamma: gamma,
                          gradGamma: &gg, gradBeta: &gb, channels: c, rowLength: n * plane, threading: Threading(threads: 1))

        // K processes, images lo..<hi each; their outputs and gradients gathered back by image.
        let results = Results(k)
        together(k) { r, group in
            let lo = n * r / k, hi = n * (r + 1) / k, m = hi - lo
            let mine = toCNHW(Array(x[lo * c * plane ..< hi * c * plane]), n: m, c: c, plane: plane)
            let myDy = toCNHW(Array(dy[lo * c * plane ..< hi * c * plane]), n: m, c: c, plane: plane)
            var out = [Float](repeating: 0, count: mine.count), dx = out
            var mean = [Float](repeating: 0, count: c), inv = mean, rm = mean, rv = [Float](repeating: 1, count: c)
            var gg = [Float](repeating: 0, count: c), gb = gg
            let memory = PooledStatistics()
            mean.withUnsafeMutableBufferPointer { mp in inv.withUnsafeMutableBufferPointer { ip in
                rm.withUnsafeMutableBufferPointer { rmp in rv.withUnsafeMutableBufferPointer { rvp in
                    gamma.withUnsafeBufferPointer { g in beta.withUnsafeBufferPointer { b in
                        let bn = BatchNormTraining(gamma: g.baseAddress!, beta: b.baseAddress!, savedMean: mp.baseAddress!,
                                                   savedInvStd: ip.baseAddress!, runningMean: rmp.baseAddress!,
                                                   runningVar: rvp.baseAddress!, momentum: 0.1, eps: 1e-5)
                        pooledBatchNormStatistics(mine, bn: bn, channels: c, rowLength: m * plane, memory: memory, group: group,
                                                  threading: Threading(threads: 1))
                        channelAffine(&out, mine, scale: memory.scale.pointer, shift: memory.shift.pointer, channels: c,
                                      rowLength: m * plane, threading: Threading(threads: 1))
                    } }
                } }
            } }
            gg.withUnsafeMutableBufferPointer { ggp in gb.withUnsafeMutableBufferPointer { gbp in
                mean.withUnsafeBufferPointer { mp in inv.withUnsafeBufferPointer { ip in gamma.withUnsafeBufferPointer { g in
                    let bn = BatchNormGradient(gamma: g.baseAddress!, savedMean: mp.baseAddress!, savedInvStd: ip.baseAddress!,
                                               gradGamma: ggp.baseAddress!, gradBeta: gbp.baseAddress!)
                    pooledBatchNormGradientSums(dy: myDy, x: mine, bn: bn, channels: c, rowLength: m * plane, memory: memory,
                                                group: group, threading: Threading(threads: 1))
                    pooledBatchNormBackward(dx: &dx, dy: myDy, x: mine, bn: bn, channels: c, rowLength: m * plane, memory: memory,
                                            threading: Threading(threads: 1))
                } } }
            } }
            results.set(r, (toNCHW(out, n: m, c: c, plane: plane), toNCHW(dx, n: m, c: c, plane: plane), mean, inv, rm, rv, gg, gb))
        }
        let all = results.all
        let label = "\(isa) \(c) channels, \(n) images of \(plane), \(k) processes"
        assertClose(all.flatMap(\.0), toNCHW(out, n: n, c: c, plane: plane), atol: 2e-5, rtol: 1e-4, label + ": output")
        assertClose(all.flatMap(\.1), toNCHW(dx, n: n, c: c, plane: plane), atol: 2e-5, rtol: 1e-4, label + ": input gradient")
        for p in all {
            assertClose(p.2, mean, atol: 1e-5, rtol: 1e-5, label + ": saved mean")
            assertClose(p.3, inv, atol: 1e-5, rtol: 1e-4, label + ": saved invstd")
            assertClose(p.4, rm, atol: 1e-5, rtol: 1e-5, label + ": running mean")
            assertClose(p.5, rv, atol: 1e-5, rtol: 1e-4, label + ": running variance")
        }
        // gamma's and beta's gradients: each process holds its share; the shares add up.
        assertClose((0..<c).map { i in all.map { $0.6[i] }.reduce(0, +) }, gg, atol: 1e-4, rtol: 1e-4, label + ": gamma gradient")
        assertClose((0..<c).map { i in all.map { $0.7[i] }.reduce(0, +) }, gb, atol: 1e-4, rtol: 1e-4, label + ": beta gradient")
    }
}

private final class Results: @unchecked Sendable {
    typealias Row = ([Float], [Float], [Float], [Float], [Float], [Float], [Float], [Float])
    private let lock = NSLock()
    private var rows: [Row?]
    init(_ k: Int) { rows = Array(repeating: nil, count: k) }
    func set(_ r: Int, _ row: Row) { lock.lock(); rows[r] = row; lock.unlock() }
    var all: [Row] { lock.lock(); defer { lock.unlock() }; return rows.map { $0! } }
}
