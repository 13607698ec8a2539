import XCTest
@testable import LruNet

/// im2col + sgemm convolution and the direct depthwise kernels against a naive NCHW reference.
final class ConvolutionTests: XCTestCase {
    func testConv2dMatchesNaiveAcrossShapes() throws {
        var rng = SplitMix64(seed: 1)
        // (n, cin, cout, h, w, k, stride, pad, groups, bias)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
            (2, 3, 8, 9, 7, 3, 2, 1, 1, false), (3, 16, 8, 5, 5, 1, 1, 0, 8, true),
            (1, 8, 8, 6, 6, 3, 1, 1, 8, false), (2, 4, 6, 7, 5, 3, 1, 0, 2, true),
            (2, 6, 4, 11, 9, 5, 2, 2, 2, false), (1, 1, 64, 28, 28, 3, 2, 1, 1, false),
            (3, 5, 5, 4, 3, 1, 2, 0, 5, true), (2, 16, 32, 3, 3, 1, 1, 0, 1, false),
            // One-channel stems, stride 1 and 2, over several images (run as depthwise convs).
            (3, 1, 64, 28, 28, 3, 2, 1, 1, false), (5, 1, 24, 9, 8, 3, 2, 1, 1, false), (4, 1, 8, 7, 5, 3, 1, 1, 1, false),
            // Grouped 1x1 convs of the reuse blocks' kind, at odd column counts.
            (5, 128, 64, 11, 13, 1, 1, 0, 8, false), (3, 64, 32, 7, 9, 1, 1, 0, 8, true), (2, 256, 128, 4, 4, 1, 1, 0, 8, false),
        ]
        for (n, cin, cout, h, w, k, s, p, g, hasBias) in cases {
            let store = ParameterStore()
            let conv = Conv2dLayer(name: "c", store: store, inputChannels: cin, outputChannels: cout, kernelSize: k,
                              stride: s, padding: p, groups: g, bias: hasBias)
            store.seal()
            let wt = randomArray(store.entry(conv.weight).count, &rng)
            store.pointer(conv.weight).update(from: wt, count: wt.count)
            let bias = hasBias ? randomArray(cout, &rng) : nil
            if let bias, let b = conv.bias { store.pointer(b).update(from: bias, count: cout) }
            let x = randomArray(n * cin * h * w, &rng)
            let ref = naiveConv(x, n: n, cin: cin, h: h, w: w, weight: wt, bias: bias, cout: cout, k: k, stride: s, pad: p, groups: g)
            let shape = try conv.plan(input: ActivationShape(channels: cin, batch: n, height: h, width: w), training: false)
            XCTAssertEqual([shape.height, shape.width], [ref.ho, ref.wo])
            var input = toCNHW(x, n: n, c: cin, plane: h * w)
            let ctx = RunContext(training: false, threading: Threading(threads: 2), cache: ParameterCache(store: store))
            let out = input.withUnsafeMutableBufferPointer { conv.forward($0.baseAddress!, ctx) }
            let got = toNCHW(Array(UnsafeBufferPointer(start: out, count: shape.count)), n: n, c: cout, plane: shape.plane)
            assertClose(got, ref.out, "conv n\(n) \(cin)->\(cout) \(h)x\(w) k\(k) s\(s) p\(p) g\(g)")
        }
    }

    func testDepthwiseMatchesNaiveGroupedConv() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 2)
            // (n, c, mult, h, w, k, stride, pad); 3/1/1 cases also run the SIMD kernel.
            let cases: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
                (2, 3, 2, 7, 5, 3, 1, 1), (1, 4, 1, 14, 14, 3, 1, 1), (3, 2, 3, 4, 4, 3, 1, 1), (2, 5, 2, 2, 2, 3, 1, 1),
                (2, 3, 2, 9, 8, 3, 2, 1), (1, 2, 2, 6, 7, 5, 1, 2), (2, 4, 1, 5, 5, 3, 2, 0), (1, 3, 2, 1, 1, 3, 1, 1),
                // 4x4 planes in registers: outputs two at a time (images in pairs) or one (images four at a time), with remainders.
                (6, 2, 1, 4, 4, 3, 1, 1), (5, 3, 2, 4, 4, 3, 1, 1),
                // One channel (a stem): the 3x3/1/1 kernel splits the images between the threads.
                (5, 1, 24, 28, 28, 3, 1, 1), (3, 1, 8, 4, 4, 3, 1, 1), (45, 1, 3, 14, 14, 3, 1, 1), (7, 1, 5, 9, 6, 3, 1, 1),
                // Stride 2: chunks of images with a short last one, odd and even sides, rows split by vectors.
                (40, 2, 1, 28, 28, 3, 2, 1), (3, 2, 2, 7, 7, 3, 2, 1), (2, 3, 1, 1, 1, 3, 2, 1), (2, 2, 1, 2, 3, 3, 2, 1),
                (5, 1, 2, 33, 17, 3, 2, 1), (1, 4, 1, 4, 4, 3, 2, 1), (9, 3, 1, 14, 14, 3, 2, 1),
                // Even widths from 16 on 8 lanes: rows deinterleaved in registers (odd heights, a one-lane
                // last strip, a full last strip, one row, a single image).
                (3, 2, 2, 17, 20, 3, 2, 1), (2, 3, 1, 15, 30, 3, 2, 1), (6, 1, 1, 1, 18, 3, 2, 1), (2, 2, 1, 5, 16, 3, 2, 1),
                (1, 5, 1, 28, 28, 3, 2, 1),
                // A one-channel stride-2 stem: the images split between the threads.
                (5, 1, 3, 9, 8, 3, 2, 1), (4, 1, 16, 28, 28, 3, 2, 1),
                // Small planes: eight images to the lanes, the rest by the polyphase sweep.
                (16, 2, 1, 7, 7, 3, 2, 1), (17, 3, 2, 5, 4, 3, 2, 1), (8, 1, 1, 1, 1, 3, 2, 1), (24, 2, 1, 16, 15, 3, 2, 1),
                (10, 4, 1, 14, 14, 3, 2, 1), (9, 2, 1, 3, 11, 3, 2, 1),
                // Eight channels to the lanes (stride 1 at one image up to 8 x 8, stride 2 under eight images up
                // to 16 x 16): a short last group, threads splitting an image's groups, several images, multipliers.
                (1, 128, 1, 4, 4, 3, 1, 1), (1, 64, 1, 7, 7, 3, 2, 1), (1, 19, 2, 5, 6, 3, 1, 1), (1, 16, 2, 8, 8, 3, 1, 1),
                (2, 13, 1, 8, 8, 3, 2, 1), (1, 20, 3, 8, 7, 3, 2, 1), (1, 7, 1, 2, 1, 3, 1, 1), (3, 11, 1, 16, 13, 3, 2, 1),
                (1, 10, 2, 14, 14, 3, 2, 1), (7, 9, 1, 15, 16, 3, 2, 1),
                // Just outside those limits: the per-channel kernels.
                (3, 19, 2, 5, 6, 3, 1, 1), (7, 9, 1, 3, 8, 3, 1, 1), (1, 9, 1, 9, 8, 3, 1, 1), (1, 9, 1, 17, 8, 3, 2, 1),
            ]
            for (n, c, h, w, s, lanes) in [(1, 128, 4, 4, 1, true), (7, 9, 15, 16, 2, true), (3, 19, 5, 6, 1, false),
                                           (1, 9, 9, 8, 1, false), (1, 9, 17, 8, 2, false), (8, 2, 7, 7, 2, false)] {
                XCTAssertEqual(usesChannelLanes(batch: n, height: h, width: w, geometry: ConvGeometry(kernel: 3, stride: s, padding: 1)),
                               lanes, "n\(n) c\(c) \(h)x\(w) s\(s)")
            }
            for (n, c, mult, h, w, k, s, p) in cases {
                let g = ConvGeometry(kernel: k, stride: s, padding: p)
                let ho = g.outputHeight(h), wo = g.outputWidth(w)
                let x = randomArray(n * c * h * w, &rng), wt = randomArray(c * mult * k * k, &rng)
                let scale = randomArray(c * mult, &rng), shift = randomArray(c * mult, &rng)
                let ref = naiveConv(x, n: n, cin: c, h: h, w: w, weight: wt, bias: nil, cout: c * mult, k: k, stride: s, pad: p, groups: c)
                let refAffine = (0..<ref.out.count).map { i in ref.out[i] * scale[(i / (ho * wo)) % (c * mult)] + shift[(i / (ho * wo)) % (c * mult)] }
                let xin = toCNHW(x, n: n, c: c, plane: h * w)
                for simd in [false, true] {
                    var out = [Float](repeating: .nan, count: n * c * mult * ho * wo)
                    var outAffine = out
                    depthwiseForward(&out, xin, wt, channels: c, multiplier: mult, batch: n, height: h, width: w, geometry: g,
                                     scratch: simd ? Scratch() : nil, threading: Threading(threads: 2))
                    depthwiseForward(&outAffine, xin, wt, channels: c, multiplier: mult, batch: n, height: h, width: w, geometry: g,
                                     scale: scale, shift: shift, scratch: simd ? Scratch() : nil, threading: Threading(threads: 2))
                    assertClose(toNCHW(out, n: n, c: c * mult, plane: ho * wo), ref.out, "dw c\(c) m\(mult) \(h)x\(w) k\(k) s\(s) p\(p) simd \(simd) \(path)")
                    assertClose(toNCHW(outAffine, n: n, c: c * mult, plane: ho * wo), refAffine, "dw+bn simd \(simd) \(path)")
                    var outRelu6 = out
                    depthwiseForward(&outRelu6, xin, wt, channels: c, multiplier: mult, batch: n, height: h, width: w, geometry: g,
                                     scale: scale, shift: shift, activation: .relu6, scratch: simd ? Scratch() : nil,
                                     threading: Threading(threads: 2))
                    assertClose(toNCHW(outRelu6, n: n, c: c * mult, plane: ho * wo), refAffine.map { min(max($0, 0), 6) },
                                "dw+bn+relu6 c\(c) m\(mult) \(h)x\(w) s\(s) simd \(simd) \(path)")
                }
            }
        }
    }

    func testPointwiseMatchesNaiveWithEpilogue() {
        // Small maps at batch 1 split their rows between the threads: the split must not change a value.
        XCTAssertEqual(pointwiseSplit(groups: 1, inPer: 256, outPer: 256, rowLength: 16, threads: 2).rowBlocks, 2)
        XCTAssertEqual(pointwiseSplit(groups: 1, inPer: 200, outPer: 40, rowLength: 33, threads: 3).rowBlocks, 2)
        XCTAssertEqual(pointwiseSplit(groups: 8, inPer: 16, outPer: 16, rowLength: 16, threads: 2).rowBlocks, 1)
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 5)
            // (cin, cout, groups, row length, threads, shuffled destinations, residual)
            let cases: [(Int, Int, Int, Int, Int, Bool, Bool)] = [
                (256, 256, 1, 16, 2, false, false), (256, 256, 1, 16, 3, true, true), (200, 40, 1, 33, 3, false, true),
                (128, 64, 1, 49, 2, true, false), (24, 48, 2, 100, 2, false, true), (32, 64, 8, 7, 2, true, true),
                (64, 24, 1, 600, 2, false, false), (96, 136, 1, 4, 2, false, true),
                // Narrow panels (3, 2 and 1 vectors on 8 lanes) take taller row blocks, the last rows in
                // blocks of 4, 2 and 1; the last columns too.
                (48, 13, 1, 17, 1, false, true), (40, 30, 1, 24, 1, true, false), (64, 29, 1, 8, 1, false, false),
                (24, 15, 1, 41, 1, false, true),
            ]
            for (cin, cout, groups, l, threads, shuffled, withResidual) in cases {
                let inPer = cin / groups, outPer = cout / groups
                let x = randomArray(cin * l, &rng), w = randomArray(cout * inPer, &rng, scale: 0.1)
                let scale = randomArray(cout, &rng), shift = randomArray(cout, &rng)
                let residual = withResidual ? randomArray(cout * l, &rng) : nil
                var dest: [Int32] = shuffled ? (0..<cout).map { Int32($0) } : []
                for i in stride(from: dest.count - 1, to: 0, by: -1) { dest.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                var want = [Float](repeating: 0, count: cout * l)
                for o in 0..<cout {
                    let g = o / outPer, d = shuffled ? Int(dest[o]) : o
                    for j in 0..<l {
                        var acc: Float = 0
                        for i in 0..<inPer { acc += w[o * inPer + i] * x[(g * inPer + i) * l + j] }
                        want[d * l + j] = max(acc * scale[o] + shift[o] + (residual?[o * l + j] ?? 0), 0)
                    }
                }
                var got = [Float](repeating: .nan, count: cout * l)
                dest.withUnsafeBufferPointer { dp in
                    (residual ?? []).withUnsafeBufferPointer { rp in
                        pointwiseForward(&got, x, weight: w, inChannels: cin, outChannels: cout, groups: groups, rowLength: l,
                                         scale: scale, shift: shift, residual: withResidual ? rp.baseAddress : nil,
                                         activation: .relu, destinations: shuffled ? dp.baseAddress : nil,
                                         threading: Threading(threads: threads))
                    }
                }
                assertClose(got, want, "1x1 \(cin)->\(cout) g\(groups) l\(l) threads \(threads) \(path)")
            }
        }
    }

    func testGemmWrapperTransposes() {
        var rng = SplitMix64(seed: 3)
        let m = 5, n = 7, k = 3
        let a = randomArray(m * k, &rng), b = randomArray(k * n, &rng)
        var ref = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { ref[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        let aT = (0..<(k * m)).map { a[($0 % m) * k + $0 / m] }          // [k][m]
        let bT = (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }          // [n][k]
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            var c = [Float](repeating: 1, count: m * n)
            sgemm(transA: ta, transB: tb, m: m, n: n, k: k, ta ? aT : a, tb ? bT : b, beta: 0, &c)
            assertClose(c, ref, "transA \(ta) transB \(tb)")
        }
    }
}

/// The SIMD 3x3 depthwise backward against the generic direct loop.
final class DepthwiseBackwardTests: XCTestCase {
    func testSIMDBackwardMatchesGeneric() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 12)
            // (45, 14x14): chunks of images, the last one short. Rolling rows (width at least 3/4 of whole
            // vectors) with one strip or several, and one row; the tall sweep for the rest and multiplier 3.
            for (n, c, m, h, w) in [(2, 3, 2, 14, 14), (45, 2, 2, 14, 14), (3, 4, 1, 7, 7), (2, 2, 3, 4, 5), (1, 5, 2, 2, 2),
                                    (2, 2, 2, 1, 1), (4, 3, 2, 9, 3), (5, 2, 1, 9, 28), (3, 2, 2, 6, 6), (4, 2, 1, 1, 12),
                                    (3, 2, 2, 5, 15)] {
                let g = ConvGeometry(kernel: 3, stride: 1, padding: 1)
                let x = randomArray(n * c * h * w, &rng), wt = randomArray(c * m * 9, &rng), gy = randomArray(n * c * m * h * w, &rng)
                let gw0 = randomArray(c * m * 9, &rng)                     // gradients accumulate onto what is there
                var gxRef = [Float](repeating: 0, count: x.count), gwRef = gw0
                depthwiseBackward(gradInput: &gxRef, gradWeight: &gwRef, gradOutput: gy, input: x, weight: wt, channels: c, multiplier: m,
                                  batch: n, height: h, width: w, geometry: g, threading: Threading(threads: 1))
                var gx = [Float](repeating: .nan, count: x.count), gw = gw0
                depthwiseBackward(gradInput: &gx, gradWeight: &gw, gradOutput: gy, input: x, weight: wt, channels: c, multiplier: m,
                                  batch: n, height: h, width: w, geometry: g, scratch: Scratch(), threading: Threading(threads: 2))
                assertClose(gx, gxRef, atol: 1e-5, "dx n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                assertClose(gw, gwRef, atol: 1e-4, "dw n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                // A residual path's gradient added in the same pass, by both paths.
                let residual = randomArray(x.count, &rng), expected = zip(gxRef, residual).map { $0 + $1 }
                for simd in [false, true] {
                    var gxr = [Float](repeating: .nan, count: x.count), gwr = gw0
                    depthwiseBackward(gradInput: &gxr, gradWeight: &gwr, gradOutput: gy, input: x, weight: wt, channels: c, multiplier: m,
                                      batch: n, height: h, width: w, geometry: g, addToInput: residual,
                                      scratch: simd ? Scratch() : nil, threading: Threading(threads: 2))
                    assertClose(gxr, expected, atol: 1e-5, "dx + residual, SIMD \(simd), n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                    assertClose(gwr, gwRef, atol: 1e-4, "dw with residual, SIMD \(simd), n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                }
            }
        }
    }
}

/// The rolling 3x3 kernels (stride 1 and 2) store whole vectors that run past a row; the last one
/// of a batch row stops at the row's end (another worker may own what follows). Checked with
/// sentinels after the output and the input gradient, on every kernel path.
final class DepthwiseRowEndTests: XCTestCase {
    func testNothingIsWrittenPastTheLastImage() {
        forEachKernelPath { path in
            var rng = SplitMix64(seed: 5)
            let g = ConvGeometry(kernel: 3, stride: 1, padding: 1), sentinel: Float = 12345, past = 32
            for (n, c, m, h, w) in [(3, 2, 2, 14, 14), (2, 3, 1, 7, 7), (1, 2, 2, 5, 28), (4, 2, 1, 1, 12), (2, 1, 2, 6, 6)] {
                let x = randomArray(n * c * h * w, &rng), wt = randomArray(c * m * 9, &rng), gy = randomArray(n * c * m * h * w, &rng)
                var out = [Float](repeating: sentinel, count: n * c * m * h * w + past)
                depthwiseForward(&out, x, wt, channels: c, multiplier: m, batch: n, height: h, width: w, geometry: g,
                                 scratch: Scratch(), threading: Threading(threads: 2))
                XCTAssertEqual(Array(out.suffix(past)), [Float](repeating: sentinel, count: past), "forward n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                var gx = [Float](repeating: sentinel, count: x.count + past), gw = [Float](repeating: 0, count: wt.count)
                depthwiseBackward(gradInput: &gx, gradWeight: &gw, gradOutput: gy, input: x, weight: wt, channels: c, multiplier: m,
                                  batch: n, height: h, width: w, geometry: g, scratch: Scratch(), threading: Threading(threads: 2))
                XCTAssertEqual(Array(gx.suffix(past)), [Float](repeating: sentinel, count: past), "input gradient n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                XCTAssertFalse(out.prefix(out.count - past).contains(sentinel), "forward left a value unwritten")
            }
            // Stride 2: the rows kernel (even widths from 16) stores whole strips that run past a row too.
            let g2 = ConvGeometry(kernel: 3, stride: 2, padding: 1)
            for (n, c, m, h, w) in [(3, 2, 1, 28, 28), (2, 1, 2, 5, 18), (1, 3, 1, 7, 20)] {
                let x = randomArray(n * c * h * w, &rng), wt = randomArray(c * m * 9, &rng)
                let count = n * c * m * g2.outputHeight(h) * g2.outputWidth(w)
                var out = [Float](repeating: sentinel, count: count + past)
                depthwiseForward(&out, x, wt, channels: c, multiplier: m, batch: n, height: h, width: w, geometry: g2,
                                 scratch: Scratch(), threading: Threading(threads: 2))
                XCTAssertEqual(Array(out.suffix(past)), [Float](repeating: sentinel, count: past), "stride 2 n\(n) c\(c) m\(m) \(h)x\(w) \(path)")
                XCTAssertFalse(out.prefix(count).contains(sentinel), "stride 2 left a value unwritten")
            }
        }
    }
}

/// Global average pooling against a naive mean: planes whose size is not a multiple of the
/// kernel's eight lanes, enough of them to be split between threads, on every kernel path.
final class GlobalPoolTests: XCTestCase {
    func testMeansMatchNaive() throws {
        try forEachKernelPath { path in
            var rng = SplitMix64(seed: 21)
            for (c, n, h, w) in [(3, 2, 1, 1), (5, 3, 3, 3), (4, 2, 4, 4), (64, 40, 7, 7), (7, 5, 3, 5), (2, 300, 5, 23)] {
                let layer = GlobalPoolLayer(name: "avgpool")
                let shape = try layer.plan(input: ActivationShape(channels: c, batch: n, height: h, width: w), training: false)
                XCTAssertEqual([shape.channels, shape.batch, shape.height, shape.width], [c, n, 1, 1])
                var x = randomArray(c * n * h * w, &rng)
                let expected = (0..<(c * n)).map { p in x[(p * h * w)..<((p + 1) * h * w)].reduce(0, +) / Float(h * w) }
                let ctx = RunContext(training: false, threading: Threading(threads: 2), cache: ParameterCache(store: ParameterStore()))
                let out = x.withUnsafeMutableBufferPointer { layer.forward($0.baseAddress!, ctx) }
                assertClose(Array(UnsafeBufferPointer(start: out, count: c * n)), expected, atol: 1e-6, "avgpool \(c)x\(n)x\(h)x\(w) \(path)")
            }
        }
    }
}
