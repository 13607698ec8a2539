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
