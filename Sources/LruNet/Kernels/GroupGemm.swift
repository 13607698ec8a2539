import CLruNetKernels

// Training's 1x1 GEMMs for narrow groups on our own kernels. A reused block's group of 8 to 32
// channels makes GEMMs of 8-64 rows and columns over a whole batch of pixels; OpenBLAS packs
// and blocks for large outputs and runs these at a fraction of its speed (docs/performance.md).
// Forward and the input gradient are the inference 1x1 kernel (body_tile.h) without an
// epilogue, the weight gradient its own kernel (body_gradient_gemm.h).

/// Groups at most this wide (lru's stages 1-3) run their training 1x1 GEMMs on ``groupGemm`` and
/// ``groupGemmWeightGradient``; wider ones on OpenBLAS, which is faster there.
let groupGemmMaxWidth = 32

/// The one decision behind the three wrappers below and ``ReuseBlock/transposedPointwise()``.
@inline(__always)
func runsOnGroupGemm(groupWidth: Int) -> Bool { groupWidth <= groupGemmMaxWidth }

/// `C[0..<rows][columns] = W x B[0..<k][columns]`: W row-major `rows x k`; B's and C's rows at
/// strides `ldb` and `ldc`, both addressed from column 0.
@inline(__always)
func groupGemm(rows: Int, k: Int, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>,
               _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if rows == 0 || columns.isEmpty { return }
    var e = lru_gemm_epilogue(out: c, ldo: ldc, res: nil, ldr: 0, scale: nil, shift: nil, dest: nil, act: ActivationKind.none.rawValue)
    lru_gemm_epilogue_run(w, k, b, ldb, rows, columns.lowerBound, columns.upperBound, &e)
}

/// `C[i][j] += sum over p < n of A[i][p] * B[j][p]` for `i < m`, `j < k`: the weight gradient
/// dW += dY x X^T. The order of each sum depends only on `n`, so splitting the rows of C among
/// threads gives the same bits.
@inline(__always)
func groupGemmWeightGradient(m: Int, k: Int, n: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                             _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    lru_gemm_nt_accumulate(c, ldc, a, lda, m, b, ldb, k, n)
}

/// `t[g]` = the transpose of group g's `rows x cols` block of `w` (groups after each other):
/// the input gradient's A, so that it runs on ``groupGemm``.
func transposeGroups(_ t: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, groups: Int, rows: Int, cols: Int) {
    for g in 0..<groups {
        let src = w + g * rows * cols, dst = t + g * rows * cols
        for r in 0..<rows { for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] } }
    }
}

// Where a group's training GEMMs run: narrow groups on the kernels above, wide ones on OpenBLAS.
// B's and C's rows are addressed from column 0.

/// `dW[0..<m][0..<k] += dY[0..<m][0..<n] x X[0..<k][0..<n]^T`, dW's rows `k` apart.
@inline(__always)
func groupPointwiseWeightGradient(m: Int, k: Int, n: Int, _ dy: UnsafePointer<Float>, lda: Int, _ x: UnsafePointer<Float>, ldb: Int,
                                  _ dw: UnsafeMutablePointer<Float>) {
    if runsOnGroupGemm(groupWidth: k / 2) {
        groupGemmWeightGradient(m: m, k: k, n: n, dy, lda: lda, x, ldb: ldb, dw, ldc: k)
    } else {
        sgemm(transB: true, m: m, n: k, k: n, dy, lda: lda, x, ldb: ldb, beta: 1, dw, ldc: k)
    }
}

/// `dX[0..<2cin][columns] = W^T x dY[0..<cin][columns]` for a group's `cin x 2cin` weights `w`;
/// `transposed` is W^T (``transposedPointwise``) when the group is narrow.
@inline(__always)
func groupPointwiseInputGradient(cin: Int, _ w: UnsafePointer<Float>, transposed: UnsafePointer<Float>?,
                                 _ dy: UnsafePointer<Float>, ldg: Int, columns: Range<Int>, _ dx: UnsafeMutablePointer<Float>, ldo: Int) {
    if let wT = transposed {
        groupGemm(rows: 2 * cin, k: cin, wT, dy, ldb: ldg, columns: columns, dx, ldc: ldo)
    } else {
        let lo = columns.lowerBound
        sgemm(transA: true, m: 2 * cin, n: columns.count, k: cin, w, lda: 2 * cin, dy + lo, ldb: ldg, dx + lo, ldc: ldo)
    }
}

// Training's forward 1x1 reads the raw depthwise rows, with the depthwise BatchNorm folded into
// the weights: W x (scale * raw + shift) = (W diag(scale)) x raw + W x shift. The normalised rows
// are never written, and backward's weight gradient reads the raw rows as well.

/// `folded[o][q] = w[o][q] * scale[q]` and `bias[o] = sum over q of w[o][q] * shift[q]` for
/// `rows` output rows of `k` weights each.
func foldPointwise(rows: Int, k: Int, _ w: UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                   into folded: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
    for o in 0..<rows {
        var b: Float = 0
        for q in 0..<k {
            let x = w[o * k + q]
            folded[o * k + q] = x * scale[q]
            b += x * shift[q]
        }
        bias[o] = b
    }
}

/// `C[0..<rows][columns] = W x B[0..<k][columns] + bias` (one bias per row): narrow groups in the
/// 1x1 kernel's epilogue (`ones`: `rows` floats of 1, its scale), wide ones on OpenBLAS onto
/// rows first filled with their bias.
func groupPointwiseBiased(rows: Int, k: Int, _ w: UnsafePointer<Float>, bias: UnsafePointer<Float>, ones: UnsafePointer<Float>,
                          _ b: UnsafePointer<Float>, ldb: Int, columns: Range<Int>, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if rows == 0 || columns.isEmpty { return }
    if runsOnGroupGemm(groupWidth: rows) {
        var e = lru_gemm_epilogue(out: c, ldo: ldc, res: nil, ldr: 0, scale: ones, shift: bias, dest: nil,
                                  act: ActivationKind.none.rawValue)
        lru_gemm_epilogue_run(w, k, b, ldb, rows, columns.lowerBound, columns.upperBound, &e)
    } else {
        let lo = columns.lowerBound
        for o in 0..<rows { (c + o * ldc + lo).update(repeating: bias[o], count: columns.count) }
        sgemm(m: rows, n: columns.count, k: k, w, lda: k, b + lo, ldb: ldb, beta: 1, c + lo, ldc: ldc)
    }
}

/// `dW[0..<m][0..<k] += dY x BN(raw)^T` from the raw rows (`BN(raw)[q] = scale[q] * raw[q] + shift[q]`):
/// dW += (dY x raw^T) diag(scale) + sums shift^T, with `sums[o]` the sum of dY's row o. (That
/// sum is zero in exact arithmetic, dY being a BatchNorm's input gradient over the whole row,
/// but it is rounded, and where a channel's variance is tiny its scale is huge.) `t` is m x k
/// floats of scratch.
func groupPointwiseWeightGradientFolded(m: Int, k: Int, n: Int, _ dy: UnsafePointer<Float>, lda: Int,
                                        _ raw: UnsafePointer<Float>, ldb: Int, scale: UnsafePointer<Float>,
                                        shift: UnsafePointer<Float>, sums: UnsafePointer<Float>,
                                        _ dw: UnsafeMutablePointer<Float>, scratch t: UnsafeMutablePointer<Float>) {
    if m == 0 { return }
    t.update(repeating: 0, count: m * k)
    groupPointwiseWeightGradient(m: m, k: k, n: n, dy, lda: lda, raw, ldb: ldb, t)
    for o in 0..<m {
        for q in 0..<k { dw[o * k + q] += t[o * k + q] * scale[q] + sums[o] * shift[q] }
    }
}
