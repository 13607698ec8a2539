import XCTest
@testable import LruNet

/// Training's group 1x1 GEMMs (Kernels/GroupGemm.swift) against a naive double-precision
/// reference, on random shapes (odd sizes, tails shorter than a vector, strided rows, column
/// ranges, groups wide enough for OpenBLAS) on every kernel path, the depthwise BatchNorm
/// folded into them, and the rule that lets the threads split the weight gradient.
final class GroupGemmTests: XCTestCase {
    func naive(_ m: Int, _ n: Int, _ k: Int, _ a: (Int, Int) -> Float, _ b: (Int, Int) -> Float) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += Double(a(i, p)) * Double(b(p, j)) } } }
        return c
    }

    func assertClose(_ got: Float, _ want: Double, scale: Double, _ message: String) {
        XCTAssertLessThanOrEqual(abs(Double(got) - want), 1e-5 * scale + 1e-6, message)
    }

    func testWeightGradientMatchesNaive() throws {
        var rng = SplitMix64(seed: 5)
        try forEachKernelPath { path in
            for (m, k, n) in [(8, 16, 25088 / 16), (1, 1, 1), (3, 5, 7), (5, 7, 300), (9, 2, 513), (16, 32, 1000), (4, 3, 15), (13, 11, 257)] {
                let lda = n + rng.nextInt(3), ldb = n + rng.nextInt(3), ldc = k + rng.nextInt(2)
                let a = randomArray(m * lda, &rng), b = randomArray(k * ldb, &rng), c0 = randomArray(m * ldc, &rng)
                var c = c0
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                    groupGemmWeightGradient(m: m, k: k, n: n, a.baseAddress!, lda: lda, b.baseAddress!, ldb: ldb, c.baseAddress!, ldc: ldc)
                } } }
                let want = naive(m, k, n, { a[$0 * lda + $1] }, { b[$1 * ldb + $0] })
                for i in 0..<m {
                    for j in 0..<k {
                        assertClose(c[i * ldc + j], Double(c0[i * ldc + j]) + want[i * k + j], scale: Double(n).squareRoot(),
                                    "dW \(m)x\(k) over \(n), [\(i)][\(j)], \(path)")
                    }
                    for j in k..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "past the row, \(path)") }
                }
            }
        }
    }

    /// The wide schedule gives each thread some rows of dW: a row's bits must not depend on
    /// which rows were computed with it.
    func testWeightGradientRowsDoNotDependOnTheSplit() throws {
        var rng = SplitMix64(seed: 6)
        try forEachKernelPath { path in
            let (m, k, n) = (16, 32, 2003)
            let a = randomArray(m * n, &rng), b = randomArray(k * n, &rng)
            var whole = [Float](repeating: 0, count: m * k), split = whole
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                whole.withUnsafeMutableBufferPointer { groupGemmWeightGradient(m: m, k: k, n: n, a.baseAddress!, lda: n, b.baseAddress!, ldb: n, $0.baseAddress!, ldc: k) }
                split.withUnsafeMutableBufferPointer { c in
                    for (r0, r1) in [(0, 3), (3, 10), (10, 16)] {
                        groupGemmWeightGradient(m: r1 - r0, k: k, n: n, a.baseAddress! + r0 * n, lda: n, b.baseAddress!, ldb: n,
                                                c.baseAddress! + r0 * k, ldc: k)
                    }
                }
            } }
            XCTAssertEqual(whole, split, path)
        }
    }

    /// Forward: the 1x1 on raw rows with a BatchNorm (`scale * x + shift` per input row)
    /// folded into its weights and bias; the input gradient with the plain weights.
    func testForwardAndInputGradientMatchNaive() throws {
        var rng = SplitMix64(seed: 7)
        try forEachKernelPath { path in
            for (cin, l) in [(1, 1), (2, 9), (3, 37), (8, 25088 / 8), (16, 1031), (5, 64), (16, 8), (40, 77), (64, 33)] {
                let w = randomArray(cin * 2 * cin, &rng)
                let scale = randomArray(2 * cin, &rng).map { 0.5 + abs($0) }, shift = randomArray(2 * cin, &rng)
                var wT = [Float](repeating: 0, count: w.count)
                transposeGroups(&wT, w, groups: 1, rows: cin, cols: 2 * cin)
                let ld = l + rng.nextInt(4)
                let lo = l > 20 ? rng.nextInt(l / 3) : 0, hi = l - (l > 20 ? rng.nextInt(l / 3) : 0)
                let x = randomArray(2 * cin * ld, &rng), dy = randomArray(cin * ld, &rng)
                let sentinel: Float = -7
                var y = [Float](repeating: sentinel, count: cin * ld), dx = [Float](repeating: sentinel, count: 2 * cin * ld)
                var folded = [Float](repeating: 0, count: w.count), bias = [Float](repeating: 0, count: cin)
                let ones = [Float](repeating: 1, count: cin)
                foldPointwise(rows: cin, k: 2 * cin, w, scale: scale, shift: shift, into: &folded, bias: &bias)
                folded.withUnsafeBufferPointer { f in x.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { y in
                    groupPointwiseBiased(rows: cin, k: 2 * cin, f.baseAddress!, bias: bias, ones: ones, x.baseAddress!, ldb: ld,
                                         columns: lo..<hi, y.baseAddress!, ldc: ld)
                } } }
                wT.withUnsafeBufferPointer { wT in w.withUnsafeBufferPointer { w in dy.withUnsafeBufferPointer { dy in dx.withUnsafeMutableBufferPointer { dx in
                    groupPointwiseInputGradient(cin: cin, w.baseAddress!, transposed: wT.baseAddress!, dy.baseAddress!, ldg: ld,
                                                columns: lo..<hi, dx.baseAddress!, ldo: ld)
                } } } }
                let wantY = naive(cin, ld, 2 * cin, { w[$0 * 2 * cin + $1] }, { scale[$0] * x[$0 * ld + $1] + shift[$0] })
                let wantDx = naive(2 * cin, ld, cin, { w[$1 * 2 * cin + $0] }, { dy[$0 * ld + $1] })
                for r in 0..<cin {
                    for j in 0..<ld {
                        if (lo..<hi).contains(j) {
                            assertClose(y[r * ld + j], wantY[r * ld + j], scale: 4 * Double(cin).squareRoot(), "y[\(r)][\(j)] cin \(cin) \(path)")
                        }
                        else { XCTAssertEqual(y[r * ld + j], sentinel, "y outside the columns, \(path)") }
                    }
                }
                for r in 0..<2 * cin {
                    for j in 0..<ld {
                        if (lo..<hi).contains(j) {
                            assertClose(dx[r * ld + j], wantDx[r * ld + j], scale: 4 * Double(cin).squareRoot(), "dx[\(r)][\(j)] cin \(cin) \(path)")
                        }
                        else { XCTAssertEqual(dx[r * ld + j], sentinel, "dx outside the columns, \(path)") }
                    }
                }
            }
        }
    }

    /// dW += dY x (scale * X + shift)^T from X, with dY's row sums given: some rows of a group
    /// (as the wide schedule's items take them), narrow and OpenBLAS-wide groups.
    func testFoldedWeightGradientMatchesNaive() {
        var rng = SplitMix64(seed: 8)
        forEachKernelPath { path in
            for (cin, rows, n) in [(1, 0..<1, 5), (4, 1..<3, 301), (8, 0..<8, 3136), (16, 5..<16, 257), (40, 0..<40, 99), (64, 10..<23, 64)] {
                let k = 2 * cin, m = rows.count
                let dy = randomArray(cin * n, &rng), x = randomArray(k * n, &rng)
                let scale = randomArray(k, &rng).map { 0.5 + abs($0) }, shift = randomArray(k, &rng)
                let sums = (0..<cin).map { o in (0..<n).reduce(Float(0)) { $0 + dy[o * n + $1] } }
                let dw0 = randomArray(cin * k, &rng)
                var dw = dw0, t = [Float](repeating: .nan, count: m * k)
                dy.withUnsafeBufferPointer { dy in x.withUnsafeBufferPointer { x in sums.withUnsafeBufferPointer { sums in
                    dw.withUnsafeMutableBufferPointer { dw in t.withUnsafeMutableBufferPointer { t in
                        groupPointwiseWeightGradientFolded(m: m, k: k, n: n, dy.baseAddress! + rows.lowerBound * n, lda: n,
                                                           x.baseAddress!, ldb: n, scale: scale, shift: shift,
                                                           sums: sums.baseAddress! + rows.lowerBound,
                                                           dw.baseAddress! + rows.lowerBound * k, scratch: t.baseAddress!)
                    } }
                } } }
                let want = naive(cin, k, n, { dy[$0 * n + $1] }, { j, q in scale[q] * x[q * n + j] + shift[q] })
                for o in 0..<cin {
                    for q in 0..<k {
                        if rows.contains(o) {
                            assertClose(dw[o * k + q], Double(dw0[o * k + q]) + want[o * k + q], scale: 4 * Double(n).squareRoot(),
                                        "dW[\(o)][\(q)] cin \(cin) rows \(rows), \(path)")
                        } else {
                            XCTAssertEqual(dw[o * k + q], dw0[o * k + q], "a row outside \(rows), \(path)")
                        }
                    }
                }
            }
        }
    }
}
