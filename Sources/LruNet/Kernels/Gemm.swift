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
    threading.parallelFor(blocks, (transA, m, n, k, a, b, beta, c, blocks)) { args, range in
        let (transA, m, n, k, a, b, beta, c, blocks) = args.pointee
        for blk in range {
            let lo = n * blk / blocks, hi = n * (blk + 1) / blocks
            sgemm(transA: transA, m: m, n: hi - lo, k: k, a, lda: transA ? m : k, b + lo, ldb: n,
                  beta: beta, c + lo, ldc: n)
        }
    }
}
