import XCTest
@testable import LruNet

/// BatchNorm, pooling, shuffle and concat against values computed independently here.
final class LayerOpsTests: XCTestCase {
    func testChannelShuffleHalfSwap() {
        // 6 channels: out[2k] = in[3 + k], out[2k+1] = in[k].
        XCTAssertEqual((0..<6).map { shuffleSource($0, channels: 6) }, [3, 0, 4, 1, 5, 2])
        for c in [6, 64, 512] {
            for i in 0..<c { XCTAssertEqual(shuffleSource(shuffleDestination(i, channels: c), channels: c), i) }
        }
    }

    func testConcatSelf() {
        var out = [Float](repeating: 0, count: 6)
        concatSelfForward(&out, [1, 2, 3], channels: 3, rowLength: 1, threading: Threading(threads: 1))
        XCTAssertEqual(out, [1, 2, 3, 1, 2, 3])
        var g = [Float](repeating: 0, count: 3)
        concatSelfBackward(&g, [1, 2, 3, 10, 20, 30], channels: 3, rowLength: 1, threading: Threading(threads: 1))
        XCTAssertEqual(g, [11, 22, 33])
        // Split across threads: 300 channels of 100 values.
        var rng = SplitMix64(seed: 8)
        let x = randomArray(300 * 100, &rng), gy = randomArray(600 * 100, &rng)
        var big = [Float](repeating: .nan, count: 600 * 100), gx = [Float](repeating: .nan, count: 300 * 100)
        concatSelfForward(&big, x, channels: 300, rowLength: 100, threading: Threading(threads: 2))
        XCTAssertEqual(big, x + x)
        concatSelfBackward(&gx, gy, channels: 300, rowLength: 100, threading: Threading(threads: 2))
        XCTAssertEqual(gx, (0..<x.count).map { gy[$0] + gy[x.count + $0] })
    }

    func testReLUForwardAndBackward() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 9)
            for count in [5, 8, 100_003] {                                // tails, and several threads' chunks
                var x = randomArray(count, &rng)
                x[count / 2] = .nan
                let gy = randomArray(count, &rng)
                var y = [Float](repeating: .nan, count: count), gx = y
                reluForward(&y, x, count: count, threading: Threading(threads: 2))
                reluBackward(&gx, gy, output: y, count: count, threading: Threading(threads: 2))
                for i in 0..<count {
                    if x[i].isNaN { XCTAssertTrue(y[i].isNaN, "NaN propagates"); continue }
                    XCTAssertEqual(y[i], max(x[i], 0), "relu at \(i) of \(count) \(path)")
                    XCTAssertEqual(gx[i], x[i] > 0 ? gy[i] : 0, "relu gradient at \(i) of \(count) \(path)")
                }
            }
        }
    }

    func testMaxPoolPaddedMatchesNaive() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 4)
            for (h, w, k, s, p) in [(7, 7, 3, 2, 1), (14, 14, 3, 2, 1), (4, 4, 3, 2, 1), (1, 1, 3, 2, 1), (2, 3, 3, 2, 1),
                                    (5, 9, 3, 2, 1), (16, 16, 3, 2, 1), (9, 23, 3, 2, 1), (28, 28, 3, 2, 1), (6, 40, 3, 2, 1),
                                    (5, 6, 2, 2, 0), (3, 5, 3, 1, 1)] {
                let planes = 3
                let g = ConvGeometry(kernel: k, stride: s, padding: p)
                let ho = g.outputHeight(h), wo = g.outputWidth(w)
                var x = randomArray(planes * h * w + FloatBuffer.slack, &rng)   // kernels may read a vector past the end
                if h * w > 3 { x[5] = .nan }                                        // NaN wins, as in PyTorch
                for i in 0..<(h * w) { x[2 * h * w + i] = Float((i * 7) % 3) }       // ties: the first maximum wins
                var ref = [Float](repeating: 0, count: planes * ho * wo), refIdx = [Int32](repeating: 0, count: ref.count)
                for pl in 0..<planes { for oy in 0..<ho { for ox in 0..<wo {
                    var m = -Float.infinity, at = -1
                    for ky in 0..<k { for kx in 0..<k {
                        let iy = oy * s - p + ky, ix = ox * s - p + kx
                        if iy >= 0, iy < h, ix >= 0, ix < w {
                            let v = x[(pl * h + iy) * w + ix]
                            if at < 0 { at = iy * w + ix }
                            if v.isNaN || v > m { m = v; at = iy * w + ix }
                        }
                    } }
                    ref[(pl * ho + oy) * wo + ox] = m
                    refIdx[(pl * ho + oy) * wo + ox] = Int32(at)
                } } }
                var out = [Float](repeating: 0, count: ref.count)
                maxPoolForward(&out, x, argmax: nil, planes: planes, height: h, width: w, geometry: g, threading: Threading(threads: 1))
                XCTAssertEqual(out.map(\.bitPattern), ref.map(\.bitPattern), "maxpool \(h)x\(w) k\(k) s\(s) p\(p) \(path)")
                // The training path (with argmax) is a separate loop: same values, and indices that point at them.
                var withArgmax = [Float](repeating: 0, count: ref.count), idx = [Int32](repeating: -1, count: ref.count)
                maxPoolForward(&withArgmax, x, argmax: &idx, planes: planes, height: h, width: w, geometry: g, threading: Threading(threads: 1))
                XCTAssertEqual(withArgmax.map(\.bitPattern), ref.map(\.bitPattern), "maxpool with argmax \(h)x\(w) \(path)")
                XCTAssertEqual(idx, refIdx, "maxpool argmax \(h)x\(w) k\(k) s\(s) p\(p) \(path)")
            }
        }
    }

    func testAvgPool() {
        // 2x2 window, stride 1 over a 3x3 plane.
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        var out = [Float](repeating: 0, count: 4)
        avgPoolForward(&out, x, planes: 1, height: 3, width: 3, geometry: ConvGeometry(kernel: 2, stride: 1), threading: Threading(threads: 1))
        XCTAssertEqual(out, [3, 4, 6, 7])
    }

    func testBatchNormInferenceFold() {
        forEachKernelPath { path in
            var scale = [Float](repeating: 0, count: 2), shift = scale
            batchNormFold(scale: &scale, shift: &shift, gamma: [2, 1], beta: [1, 0], mean: [3, -1], variance: [4 - 1e-5, 1 - 1e-5], channels: 2, eps: 1e-5)
            var out = [Float](repeating: 0, count: 4)
            channelAffine(&out, [5, 3, -1, 0], scale: scale, shift: shift, channels: 2, rowLength: 2, threading: Threading(threads: 1))
            // (x - mean) / sqrt(var + eps) * gamma + beta
            assertClose(out, [3, 1, 0, 1], atol: 1e-5, path)
        }
    }

    func testBatchNormTrainingStatistics() {
        forEachKernelPath { path in
            // One channel, values 1...4: mean 2.5, biased var 1.25, unbiased var 5/3.
            let x: [Float] = [1, 2, 3, 4]
            var out = [Float](repeating: 0, count: 4)
            var mean: [Float] = [0], inv: [Float] = [0], rm: [Float] = [0], rv: [Float] = [1]
            batchNormTrainForward(&out, x, gamma: [1], beta: [0], savedMean: &mean, savedInvStd: &inv, runningMean: &rm, runningVar: &rv,
                                  momentum: 0.1, eps: 1e-5, channels: 1, rowLength: 4, threading: Threading(threads: 1))
            let sd = (1.25 + 1e-5).squareRoot()
            assertClose(out, [-1.5, -0.5, 0.5, 1.5].map { Float($0 / sd) }, atol: 1e-6)
            assertClose(rm, [0.25], atol: 1e-7)                     // 0.9 * 0 + 0.1 * 2.5
            assertClose(rv, [Float(0.9 + 0.1 * 5.0 / 3.0)], atol: 1e-6)
            XCTAssertEqual(mean, [2.5], path)
        }
    }

    /// The reused block's row kernels for the folded 1x1: the statistics without the
    /// normalised row, and the ReLU + BatchNorm backward in one kernel with the row sum of its
    /// result; the same bits as the separate kernels, at lengths around the vector widths.
    func testFoldedBatchNormRowKernelsMatchSeparateOnes() {
        var rng = SplitMix64(seed: 31)
        // gamma, beta, saved mean and inverse std, running mean and variance, gamma's and beta's gradients.
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 8)
        defer { p.deallocate() }
        let training = BatchNormTraining(gamma: p, beta: p + 1, savedMean: p + 2, savedInvStd: p + 3, runningMean: p + 4,
                                         runningVar: p + 5, momentum: 0.1, eps: 1e-5)
        let gradient = BatchNormGradient(gamma: p, savedMean: p + 2, savedInvStd: p + 3, gradGamma: p + 6, gradBeta: p + 7)
        forEachKernelPath { path in
            for n in [1, 3, 8, 15, 16, 17, 33, 1000, 1003] {
                let x = randomArray(n, &rng).map { 2 + $0 }, g = randomArray(n, &rng), mask = randomArray(n, &rng)
                func stats(_ write: Bool) -> [Float] {
                    p.update(from: [1.3, -0.2, .nan, .nan, 0.4, 1.5], count: 6)
                    var out = [Float](repeating: 0, count: n)
                    if write { training.forwardRow(&out, x, n, channel: 0) } else { training.statisticsRow(x, n, channel: 0) }
                    return Array(UnsafeBufferPointer(start: p + 2, count: 4))
                }
                XCTAssertEqual(stats(false), stats(true), "statistics, n \(n) \(path)")
                func backward(_ fused: Bool) -> (gy: [Float], dx: [Float], sums: [Float]) {
                    p.update(from: [1.3, -0.2, 1.9, 0.7, 0, 0, 0.25, -0.5], count: 8)
                    var gy = [Float](repeating: .nan, count: n), dx = gy
                    var sum = Float.nan
                    if fused {
                        sum = gradient.backwardReLURow(&dx, gy: &gy, g: g, output: mask, x: x, n, channel: 0)
                    } else {
                        rowReLUGradient(&gy, g, output: mask, n)
                        gradient.backwardRow(&dx, dy: gy, x: x, n, channel: 0)
                    }
                    return (gy, dx, [sum, p[6], p[7]])
                }
                let fused = backward(true), separate = backward(false)
                XCTAssertEqual(fused.gy, separate.gy, "gy, n \(n) \(path)")
                XCTAssertEqual(fused.dx, separate.dx, "dx, n \(n) \(path)")
                XCTAssertEqual(Array(fused.sums[1...]), Array(separate.sums[1...]), "gamma and beta gradients, n \(n) \(path)")
                let want = separate.dx.reduce(0.0) { $0 + Double($1) }, size = separate.dx.reduce(0.0) { $0 + abs(Double($1)) }
                XCTAssertEqual(Double(fused.sums[0]), want, accuracy: 1e-6 * size + 1e-7, "sum of dx, n \(n) \(path)")
            }
        }
    }
}
