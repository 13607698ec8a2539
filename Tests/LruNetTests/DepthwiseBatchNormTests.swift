import XCTest
@testable import LruNet

/// Training's fused depthwise 3x3 + BatchNorm kernels against the separate layers they replace:
/// the generic depthwise loop, then training BatchNorm forward; BatchNorm backward, then the
/// generic depthwise backward. Shapes cover one and several image chunks per channel, odd
/// sizes, 1x1 planes and uneven channel splits over two threads.
final class DepthwiseBatchNormTests: XCTestCase {
    func testFusedTrainingKernelsMatchSeparateLayers() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 21)
            for (n, c, m, h, w, threads) in [(3, 3, 2, 5, 7, 2), (45, 2, 2, 14, 14, 2), (2, 5, 2, 4, 4, 2), (19, 6, 2, 4, 4, 2), (7, 3, 1, 1, 1, 2),
                                             (33, 4, 2, 7, 7, 1), (1, 3, 3, 3, 9, 2)] {
                let tag = "n\(n) c\(c) m\(m) \(h)x\(w) t\(threads) \(path)"
                let wide = c * m, l = n * h * w
                let g = ConvGeometry(kernel: 3, stride: 1, padding: 1), threading = Threading(threads: threads)
                let x = randomArray(c * l, &rng), wt = randomArray(wide * 9, &rng)
                let gamma = randomArray(wide, &rng).map { 1 + 0.5 * $0 }, beta = randomArray(wide, &rng)
                let runMean0 = randomArray(wide, &rng), runVar0 = randomArray(wide, &rng).map { 1 + 0.5 * $0 }

                // Forward: separate layers.
                var raw = [Float](repeating: 0, count: wide * l), yRef = raw
                var meanRef = [Float](repeating: 0, count: wide), invRef = meanRef, rmRef = runMean0, rvRef = runVar0
                depthwiseForward(&raw, x, wt, channels: c, multiplier: m, batch: n, height: h, width: w, geometry: g, threading: threading)
                batchNormTrainForward(&yRef, raw, gamma: gamma, beta: beta, savedMean: &meanRef, savedInvStd: &invRef,
                                      runningMean: &rmRef, runningVar: &rvRef, momentum: 0.1, eps: 1e-5,
                                      channels: wide, rowLength: l, threading: threading)
                // Forward: fused.
                var y = [Float](repeating: .nan, count: wide * l), kept = y
                var mean = [Float](repeating: .nan, count: wide), inv = mean, rm = runMean0, rv = runVar0
                gamma.withUnsafeBufferPointer { gp in beta.withUnsafeBufferPointer { bp in
                mean.withUnsafeMutableBufferPointer { mp in inv.withUnsafeMutableBufferPointer { ip in
                rm.withUnsafeMutableBufferPointer { rmp in rv.withUnsafeMutableBufferPointer { rvp in
                    let bn = BatchNormTraining(gamma: gp.baseAddress!, beta: bp.baseAddress!, savedMean: mp.baseAddress!,
                                               savedInvStd: ip.baseAddress!, runningMean: rmp.baseAddress!, runningVar: rvp.baseAddress!,
                                               momentum: 0.1, eps: 1e-5)
                    depthwiseBatchNormTrainForward(&y, raw: &kept, x, wt, bn: bn, channels: c, multiplier: m, batch: n, height: h, width: w,
                                                   scratch: Scratch(), threading: threading)
                } } } } } }
                assertClose(kept, raw, atol: 1e-5, "kept raw output \(tag)")
                assertClose(y, yRef, atol: 1e-4, "forward \(tag)")
                assertClose(mean, meanRef, atol: 1e-5, "saved mean \(tag)")
                assertClose(inv, invRef, atol: 1e-4, "saved inverse std \(tag)")
                assertClose(rm, rmRef, atol: 1e-5, "running mean \(tag)")
                assertClose(rv, rvRef, atol: 1e-4, "running variance \(tag)")

                // Backward: separate layers. Weight gradients accumulate onto what is there.
                let dy = randomArray(wide * l, &rng), residual = randomArray(c * l, &rng)
                let gw0 = randomArray(wide * 9, &rng), gg0 = randomArray(wide, &rng), gb0 = randomArray(wide, &rng)
                var dRaw = [Float](repeating: 0, count: wide * l), ggRef = gg0, gbRef = gb0
                batchNormBackward(gradInput: &dRaw, gradOutput: dy, input: raw, savedMean: meanRef, savedInvStd: invRef, gamma: gamma,
                                  gradGamma: &ggRef, gradBeta: &gbRef, channels: wide, rowLength: l, threading: threading)
                var dxRef = [Float](repeating: 0, count: c * l), gwRef = gw0
                depthwiseBackward(gradInput: &dxRef, gradWeight: &gwRef, gradOutput: dRaw, input: x, weight: wt, channels: c,
                                  multiplier: m, batch: n, height: h, width: w, geometry: g, addToInput: residual, threading: threading)
                // Backward: fused, from the raw rows and statistics the fused forward kept.
                var dx = [Float](repeating: .nan, count: c * l), gw = gw0, gg = gg0, gb = gb0
                gamma.withUnsafeBufferPointer { gp in mean.withUnsafeBufferPointer { mp in inv.withUnsafeBufferPointer { ip in
                gg.withUnsafeMutableBufferPointer { ggp in gb.withUnsafeMutableBufferPointer { gbp in
                    let bn = BatchNormGradient(gamma: gp.baseAddress!, savedMean: mp.baseAddress!, savedInvStd: ip.baseAddress!,
                                               gradGamma: ggp.baseAddress!, gradBeta: gbp.baseAddress!)
                    depthwiseBatchNormBackward(gradInput: &dx, gradWeight: &gw, bn: bn, gradOutput: dy, raw: kept, input: x, weight: wt,
                                               addToInput: residual, channels: c, multiplier: m, batch: n, height: h, width: w,
                                               scratch: Scratch(), threading: threading)
                } } } } }
                assertClose(dx, dxRef, atol: 1e-4, rtol: 1e-3, "d input \(tag)")
                assertClose(gw, gwRef, atol: 1e-3, rtol: 1e-3, "d weight \(tag)")
                assertClose(gg, ggRef, atol: 1e-3, rtol: 1e-3, "d gamma \(tag)")
                assertClose(gb, gbRef, atol: 1e-4, rtol: 1e-4, "d beta \(tag)")
            }
        }
    }
}
