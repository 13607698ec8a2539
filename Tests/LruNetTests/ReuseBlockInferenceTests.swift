import XCTest
@testable import LruNet

/// The reused block in inference against a naive NCHW statement of the paper's
/// block, for both the tiled kernels and the layer-by-layer path: odd planes,
/// batches that leave a partial tile, batch 1 (groups split across threads),
/// 1 and 2 threads.
final class ReuseBlockInferenceTests: XCTestCase {
    /// y = relu(pwBN(pw(dwBN(dw(x)))) + x), shuffled between iterations, with naive convs.
    func naiveBlock(_ x: [Float], n: Int, planes: Int, h: Int, w: Int, iterations: Int, store: ParameterStore,
                    block: ReuseBlock) -> [Float] {
        func values(_ ref: ParameterRef) -> [Float] { Array(UnsafeBufferPointer(start: store.pointer(ref), count: store.entry(ref).count)) }
        func bn(_ y: [Float], _ refs: BatchNormRefs) -> [Float] {
            let g = values(refs.weight), b = values(refs.bias), m = values(refs.runningMean), v = values(refs.runningVar)
            let c = refs.channels, plane = h * w
            return y.indices.map { i in
                let ch = (i / plane) % c
                return (y[i] - m[ch]) / (v[ch] + 1e-5).squareRoot() * g[ch] + b[ch]
            }
        }
        var res = x
        for i in 0..<iterations {
            let dw = naiveConv(res, n: n, cin: planes, h: h, w: w, weight: values(block.dwWeight), bias: nil,
                               cout: 2 * planes, k: 3, stride: 1, pad: 1, groups: planes).out
            let pw = naiveConv(bn(dw, block.dwBN[i]), n: n, cin: 2 * planes, h: h, w: w, weight: values(block.pwWeight),
                               bias: nil, cout: planes, k: 1, stride: 1, pad: 0, groups: 8).out
            var y = zip(bn(pw, block.pwBN[i]), res).map { max($0 + $1, 0) }
            if i < iterations - 1 {
                let plane = h * w, src = y
                for b in 0..<n { for c in 0..<planes {
                    let from = shuffleSource(c, channels: planes)
                    for p in 0..<plane { y[(b * planes + c) * plane + p] = src[(b * planes + from) * plane + p] }
                } }
            }
            res = y
        }
        return res
    }

    func testTiledAndLayerByLayerMatchNaiveBlock() throws {
        try forEachKernelPath { path in
            var rng = SplitMix64(seed: 21)
            let cases: [(planes: Int, h: Int, w: Int, n: Int, iterations: Int)] = [
                (32, 5, 7, 1, 3), (32, 5, 7, 3, 2), (64, 14, 14, 1, 2), (64, 14, 14, 5, 1),
                (32, 4, 4, 9, 3), (64, 7, 7, 6, 2), (32, 1, 1, 4, 2), (32, 3, 2, 11, 3),
                (128, 4, 4, 1, 2), (128, 3, 5, 2, 2), (256, 2, 2, 3, 1),   // few columns per tile
                (128, 4, 4, 5, 2),                                         // a narrow last tile
                (128, 7, 7, 7, 2),                                         // a partial last tile
                // Rolling rows on some paths, the tall sweep on others: strips past the row, one row, many strips.
                (32, 6, 6, 4, 2), (32, 9, 12, 3, 2), (32, 5, 28, 2, 1), (32, 1, 8, 6, 2), (32, 3, 15, 4, 1), (32, 2, 9, 5, 2),
                // Batch 1 up to 16 x 16: the depthwise with eight channels in the lanes (a short group at 40).
                (64, 16, 16, 1, 2), (128, 7, 7, 1, 2), (40, 8, 3, 1, 2), (48, 2, 2, 1, 1), (32, 17, 17, 1, 1),
                // Batch 1, many iterations: every iteration's groups split between the threads sharing the tile.
                (64, 7, 7, 1, 7), (128, 4, 4, 1, 6),
                // Batch 1 in eight-channel pixels (planes a multiple of 64, at least 4 iterations): output
                // blocks in pairs and alone (192: three per group), the shuffle's interleave at 512.
                (192, 5, 6, 1, 4), (512, 4, 4, 1, 4), (256, 3, 1, 1, 5),
            ]
            for t in cases {
                let store = ParameterStore()
                let block = ReuseBlock(name: "stage1", store: store, planes: t.planes, iterations: t.iterations)
                store.seal()
                for e in store.entries.indices {
                    let ref = ParameterRef(index: e), count = store.entry(ref).count
                    var v = randomArray(count, &rng, scale: store.entry(ref).role == .convWeight ? 0.5 : 0.3)
                    if store.entry(ref).role == .runningVar { v = v.map { abs($0) + 0.5 } }
                    if store.entry(ref).role == .bnWeight { v = v.map { $0 + 1 } }
                    store.pointer(ref).update(from: v, count: count)
                }
                let x = randomArray(t.n * t.planes * t.h * t.w, &rng)
                let reference = naiveBlock(x, n: t.n, planes: t.planes, h: t.h, w: t.w, iterations: t.iterations, store: store, block: block)
                let shape = try block.plan(input: ActivationShape(channels: t.planes, batch: t.n, height: t.h, width: t.w), training: false)
                let shared = t.n == 1 ? [(true, 3), (true, 8)] : []      // groups split 3/3/2 and one per thread
                for (tiled, threads) in [(true, 1), (true, 2), (true, 16), (false, 2), (false, 16)] + shared {
                    block.tiled = tiled
                    var input = toCNHW(x, n: t.n, c: t.planes, plane: t.h * t.w)
                    let ctx = RunContext(training: false, threading: Threading(threads: threads), cache: ParameterCache(store: store))
                    if tiled {      // plans the tiles, then leaves NaN wherever the next pass should not look
                        _ = input.withUnsafeMutableBufferPointer { block.forward($0.baseAddress!, ctx) }
                        block.fillTileBuffers(.nan)
                    }
                    let out = input.withUnsafeMutableBufferPointer { block.forward($0.baseAddress!, ctx) }
                    let got = toNCHW(Array(UnsafeBufferPointer(start: out, count: shape.count)), n: t.n, c: t.planes, plane: shape.plane)
                    assertClose(got, reference, atol: 1e-3, rtol: 1e-3,
                                "planes \(t.planes) \(t.h)x\(t.w) batch \(t.n) N=\(t.iterations) tiled \(tiled) threads \(threads) \(path)")
                    XCTAssertEqual(input, toCNHW(x, n: t.n, c: t.planes, plane: t.h * t.w), "the block must not write its input")
                }
            }
        }
    }

    /// LruNet's inference rewrite around a block: the concat [x, x] before it becomes an index map
    /// in the block's reads, and the max pooling after it happens as the block writes its output
    /// (up to 16 wide) or right after its last iteration. Against the description's layers run one
    /// by one, on both inference paths, odd plane sizes, partial tiles, batch 1 split across
    /// threads, and 1, 2 and 16 threads.
    func testConcatAndPoolFusionsMatchUnfusedLayers() throws {
        try forEachKernelPath { path in
            var rng = SplitMix64(seed: 33)
            for (planes, h, w, n) in [(32, 14, 14, 3), (64, 7, 7, 1), (32, 4, 4, 9), (32, 5, 7, 2), (128, 4, 4, 5), (32, 16, 16, 2),
                                      (32, 17, 20, 2), (64, 28, 28, 1), (24, 9, 9, 2)] {
                let store = ParameterStore()
                let concat = ConcatSelfLayer(name: "cat1")
                let block = ReuseBlock(name: "stage1", store: store, planes: planes, iterations: 2)
                let pool = PoolLayer(name: "mpool1", mode: .max, kernelSize: 3, stride: 2, padding: 1)
                let graph = SequenceLayer("", [concat, block, pool])
                store.seal()
                for e in store.entries.indices {
                    let ref = ParameterRef(index: e), count = store.entry(ref).count
                    var v = randomArray(count, &rng, scale: 0.5)
                    if store.entry(ref).role == .runningVar { v = v.map { abs($0) + 0.5 } }
                    store.pointer(ref).update(from: v, count: count)
                }
                let (fused, decisions) = FusionRewrite.inference(graph)
                XCTAssertEqual(decisions.map(\.rule), ["concat as index map", "pooled block output"])
                XCTAssertEqual(fused.layers.count, 1, "the block takes the concat and the pooling")
                let fusedBlock = try XCTUnwrap(fused.layers.first as? ReuseBlock)
                XCTAssertTrue(fusedBlock.inputRepeatsHalf && fusedBlock.poolsOutput)
                XCTAssertFalse(block.inputRepeatsHalf || block.poolsOutput, "the rewrite leaves the description's layers as they were")
                let half = toCNHW(randomArray(n * planes / 2 * h * w, &rng), n: n, c: planes / 2, plane: h * w)
                let input = ActivationShape(channels: planes / 2, batch: n, height: h, width: w)
                for (tiled, threads) in [(true, 1), (true, 2), (true, 16), (false, 2)] {
                    let ctx = RunContext(training: false, threading: Threading(threads: threads), cache: ParameterCache(store: store))
                    block.tiled = tiled; fusedBlock.tiled = tiled
                    let refShape = try graph.plan(input: input, training: false)
                    var xref = half
                    let y = xref.withUnsafeMutableBufferPointer { graph.forward($0.baseAddress!, ctx) }
                    let expected = Array(UnsafeBufferPointer(start: y, count: refShape.count))
                    let outShape = try fused.plan(input: input, training: false)
                    XCTAssertEqual(outShape, refShape)
                    XCTAssertEqual(fusedBlock.poolsInTiles, w <= 16 && planes % 32 == 0)   // 24 planes: no tiles
                    var xin = half
                    let z = xin.withUnsafeMutableBufferPointer { fused.forward($0.baseAddress!, ctx) }
                    assertClose(Array(UnsafeBufferPointer(start: z, count: outShape.count)), expected, atol: 1e-5,
                                "planes \(planes) \(h)x\(w) batch \(n) tiled \(tiled) threads \(threads) \(path)")
                    XCTAssertEqual(xin, half, "the graph must not write its input")
                }
                _ = try graph.plan(input: input, training: true)             // training runs the description as it was
            }
        }
    }
}
