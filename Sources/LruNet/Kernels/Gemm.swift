import COpenBLAS

/// Row-major `C = alpha * op(A) * op(B) + beta * C` on OpenBLAS.
///
/// Every convolution and linear layer goes through this one wrapper. All
/// matrices are dense, so leading dimensions follow from the transpose flags:
/// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
           alpha: Float = 1, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
           beta: Float = 0, _ c: UnsafeMutablePointer<Float>) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(transA ? m : k), b, Int32(transB ? k : n),
                beta, c, Int32(n))
}

/// Row-major GEMM with explicit leading dimensions, for column blocks of larger matrices.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// `C = op(A) x B (+ beta C)` with B and C split into column blocks, one per thread.
/// Used when a layer has fewer groups than threads. Each block is a few hundred columns
/// or more, so every call still runs OpenBLAS's packed kernels at full width.
func sgemmColumnsParallel(transA: Bool = false, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>,
                          _ b: UnsafePointer<Float>, beta: Float = 0, _ c: UnsafeMutablePointer<Float>,
                          threading: Threading) {
    let blocks = min(threading.threads, max(1, n / 256))
    let pass = ColumnBlocks(transA: transA, m: m, n: n, k: k, a: ConstRows(a), b: ConstRows(b), beta: beta, c: Rows(c), blocks: blocks)
    threading.parallelFor(blocks, pass) { args, range in
        let r = args.pointee, n = r.n
        for blk in range {
            let lo = n * blk / r.blocks, hi = n * (blk + 1) / r.blocks
            sgemm(transA: r.transA, m: r.m, n: hi - lo, k: r.k, r.a.base, lda: r.transA ? r.m : r.k, r.b + lo, ldb: n,
                  beta: r.beta, r.c + lo, ldc: n)
        }
    }
}

/// C = op(A) B split by columns, each thread its own block of columns of B and C.
private struct ColumnBlocks: Sendable {
    let transA: Bool, m: Int, n: Int, k: Int
    let a: ConstRows, b: ConstRows, beta: Float, c: Rows, blocks: Int
}
