import XCTest
@testable import LruNet

/// The reused block's training step against the same computation composed from the separate,
/// individually tested layer kernels: depthwise 3x3, training BatchNorm, grouped 1x1 conv,
/// BatchNorm + residual + ReLU written shuffled, and their backward passes, iteration by
/// iteration over the whole batch. Forward output, input gradient, both shared weight
/// gradients, every BatchNorm's gradients and running statistics must agree.
final class ReuseBlockTrainingTests: XCTestCase {
    /// Up to 8 threads the block runs group by group; 16 threads (more than cores here) take
    /// the wide schedule, split by channel and column block. Groups of up to 32 channels run
    /// their 1x1 GEMMs on our kernels, wider ones (512 planes) on OpenBLAS.
    func testTrainingStepMatchesComposedLayerKernels() throws {
        try forEachKernelPath { path in
            for (planes, n, h, w, iterations, threads) in [(16, 3, 5, 7, 3, 2), (32, 2, 14, 14, 2, 2), (8, 45, 14, 14, 2, 2),
                                                            (64, 5, 4, 4, 2, 1), (16, 1, 1, 1, 3, 2),
                                                            (16, 3, 5, 7, 3, 16), (64, 5, 4, 4, 2, 16), (32, 9, 14, 14, 2, 16), (16, 1, 1, 1, 3, 16),
                                                            (256, 2, 3, 3, 2, 2), (512, 2, 2, 3, 2, 2), (512, 3, 2, 2, 2, 16)] {
                try check(planes: planes, n: n, h: h, w: w, iterations: iterations, threads: threads, path: path)
            }
        }
    }

    /// Synchronised BatchNorm's schedule (ReuseBlock+PooledTraining.swift), here with a group of
    /// one process: the pooled sums are this process's own.
    func testPooledScheduleMatchesComposedLayerKernels() throws {
        try forEachKernelPath { path in
            for (planes, n, h, w, iterations, threads) in [(16, 3, 5, 7, 3, 2), (32, 2, 14, 14, 2, 1), (64, 5, 4, 4, 2, 16), (16, 40, 14, 14, 2, 2), (16, 300, 4, 4, 2, 1),
                                                            (16, 1, 1, 1, 3, 2)] {
                try check(planes: planes, n: n, h: h, w: w, iterations: iterations, threads: threads, path: path, pooled: true)
            }
        }
    }

    func check(planes: Int, n: Int, h: Int, w: Int, iterations: Int, threads: Int, path: String, pooled: Bool = false) throws {
        let tag = "planes \(planes) n\(n) \(h)x\(w) N\(iterations) t\(threads) \(path)\(pooled ? " pooled" : "")"
        let store = ParameterStore()
        let block = ReuseBlock(name: "stage", store: store, planes: planes, iterations: iterations)
        store.seal()
        var rng = SplitMix64(seed: 17)
        for e in store.entries {
            let p = store.values.pointer + e.offset
            for i in 0..<e.count {
                switch e.role {
                case .bnWeight, .runningVar: p[i] = 1 + 0.5 * (2 * rng.nextUniform() - 1)
                default: p[i] = 0.5 * (2 * rng.nextUniform() - 1)
                }
            }
        }
        let initial = store.values.array
        let shape = ActivationShape(channels: planes, batch: n, height: h, width: w)
        let l = shape.rowLength, wide = 2 * planes
        let x = randomArray(planes * l, &rng), gy = randomArray(planes * l, &rng)
        let threading = Threading(threads: threads)

        // The block.
        _ = try block.plan(input: shape, training: true)
        let ctx = RunContext(training: true, threading: threading, cache: ParameterCache(store: store))
        if pooled { ctx.pooledBatchNorm = .single }
        store.gradients.zero()
        var xb = x, gyb = gy
        let y = Array(UnsafeBufferPointer(start: xb.withUnsafeMutableBufferPointer { block.forward($0.baseAddress!, ctx) },
                                          count: planes * l))
        let gx = Array(UnsafeBufferPointer(start: gyb.withUnsafeMutableBufferPointer {
            block.backward($0.baseAddress!, needInputGradient: true, ctx)! }, count: planes * l))
        let gotGradients = store.gradients.array, gotValues = store.values.array
        // The group schedule computes the depthwise output again in backward instead of keeping it.
        XCTAssertEqual(block.saved.contains { $0.dwRaw.buffer.count > 0 }, pooled || block.runsWide(ctx),
                       "raw depthwise output kept \(tag)")

        // The composition, on a fresh copy of the parameters.
        store.values.pointer.update(from: initial, count: initial.count)
        store.gradients.zero()
        func p(_ r: ParameterRef) -> UnsafeMutablePointer<Float> { store.pointer(r) }
        func g(_ r: ParameterRef) -> UnsafeMutablePointer<Float> { store.gradient(r) }
        let pwShape = ConvShape(inChannels: wide, outChannels: planes, groups: 8, geometry: ConvGeometry(kernel: 1),
                                batch: n, height: h, width: w)
        let dwGeometry = ConvGeometry(kernel: 3, stride: 1, padding: 1), scratch = Scratch()
        struct Saved { var dwRaw, dwNorm, pwRaw, out: [Float]; var dwMean, dwInv, pwMean, pwInv: [Float] }
        var saved: [Saved] = [], res = x
        for i in 0..<iterations {
            let last = i == iterations - 1
            var s = Saved(dwRaw: .init(repeating: 0, count: wide * l), dwNorm: .init(repeating: 0, count: wide * l),
                          pwRaw: .init(repeating: 0, count: planes * l), out: .init(repeating: 0, count: planes * l),
                          dwMean: .init(repeating: 0, count: wide), dwInv: .init(repeating: 0, count: wide),
                          pwMean: .init(repeating: 0, count: planes), pwInv: .init(repeating: 0, count: planes))
            depthwiseForward(&s.dwRaw, res, p(block.dwWeight), channels: planes, multiplier: 2, batch: n, height: h, width: w,
                             geometry: dwGeometry, scratch: scratch, threading: threading)
            batchNormTrainForward(&s.dwNorm, s.dwRaw, gamma: p(block.dwBN[i].weight), beta: p(block.dwBN[i].bias),
                                  savedMean: &s.dwMean, savedInvStd: &s.dwInv, runningMean: p(block.dwBN[i].runningMean),
                                  runningVar: p(block.dwBN[i].runningVar), momentum: 0.1, eps: 1e-5, channels: wide,
                                  rowLength: l, threading: threading)
            convForward(&s.pwRaw, s.dwNorm, weight: p(block.pwWeight), bias: nil, shape: pwShape, columns: nil, threading: threading)
            batchNormTrainForward(&s.out, s.pwRaw, gamma: p(block.pwBN[i].weight), beta: p(block.pwBN[i].bias),
                                  savedMean: &s.pwMean, savedInvStd: &s.pwInv, runningMean: p(block.pwBN[i].runningMean),
                                  runningVar: p(block.pwBN[i].runningVar), momentum: 0.1, eps: 1e-5, channels: planes,
                                  rowLength: l, residual: res, activation: .relu, shuffleOutput: !last, threading: threading)
            saved.append(s)
            res = s.out
        }
        assertClose(y, res, atol: 1e-5, rtol: 1e-5, "forward \(tag)")
        var grad = gy
        for i in stride(from: iterations - 1, through: 0, by: -1) {
            let s = saved[i], last = i == iterations - 1
            var pre = [Float](repeating: 0, count: planes * l)       // at the pre-ReLU sum, un-shuffled
            for c in 0..<planes {
                let at = last ? c : shuffleDestination(c, channels: planes)
                for j in 0..<l { pre[c * l + j] = s.out[at * l + j] > 0 ? grad[at * l + j] : 0 }
            }
            var gPw = [Float](repeating: 0, count: planes * l), gDwNorm = [Float](repeating: 0, count: wide * l)
            var gDwRaw = gDwNorm, gIn = [Float](repeating: 0, count: planes * l)
            batchNormBackward(gradInput: &gPw, gradOutput: pre, input: s.pwRaw, savedMean: s.pwMean, savedInvStd: s.pwInv,
                              gamma: p(block.pwBN[i].weight), gradGamma: g(block.pwBN[i].weight), gradBeta: g(block.pwBN[i].bias),
                              channels: planes, rowLength: l, threading: threading)
            convBackward(gradInput: &gDwNorm, gradWeight: g(block.pwWeight), gradBias: nil, gradOutput: gPw, input: s.dwNorm,
                         weight: p(block.pwWeight), shape: pwShape, columns: nil, threading: threading)
            batchNormBackward(gradInput: &gDwRaw, gradOutput: gDwNorm, input: s.dwRaw, savedMean: s.dwMean, savedInvStd: s.dwInv,
                              gamma: p(block.dwBN[i].weight), gradGamma: g(block.dwBN[i].weight), gradBeta: g(block.dwBN[i].bias),
                              channels: wide, rowLength: l, threading: threading)
            let input = i == 0 ? x : saved[i - 1].out
            depthwiseBackward(gradInput: &gIn, gradWeight: g(block.dwWeight), gradOutput: gDwRaw, input: input,
                              weight: p(block.dwWeight), channels: planes, multiplier: 2, batch: n, height: h, width: w,
                              geometry: dwGeometry, addToInput: pre, scratch: scratch, threading: threading)
            grad = gIn
        }
        assertClose(gx, grad, atol: 1e-4, rtol: 1e-4, "input gradient \(tag)")
        let wantGradients = store.gradients.array, wantValues = store.values.array
        for e in store.entries {
            let r = e.offset ..< e.offset + e.count
            if e.role.isTrainable {
                assertClose(Array(gotGradients[r]), Array(wantGradients[r]), atol: 1e-3, rtol: 1e-3, "d/d \(e.name) \(tag)")
            } else {
                assertClose(Array(gotValues[r]), Array(wantValues[r]), atol: 1e-5, rtol: 1e-5, "\(e.name) \(tag)")
            }
        }
    }
}
