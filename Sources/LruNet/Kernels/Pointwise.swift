// The register-blocked 1x1 (pointwise) GEMM of the fused inference tiles:
// C[r][col] = sum_k W[r][k] * B[k][col] for the rows of one group, each finished vector of 8
// results handed to an epilogue. Written generic over the epilogue (a struct) rather than with
// nested closures, the same loop nest compiled to code that doubled batch-1 throughput.

/// What happens to each finished vector of 8 outputs (row `row`, columns `col ..< col+8`).
protocol PointwiseEpilogue {
    func store(_ acc: SIMD8<Float>, row: Int, col: Int)
}

/// `C = W x B` for output rows `rows` (a multiple of 4 long; row r's weights at
/// `weight + (r - rows.lowerBound) * k`) over `columns` columns of `b` (row stride `ldb`; a
/// multiple of 8, as tile rows are). Blocks of 4 rows x 24 columns keep 12 accumulators in
/// registers; each k step loads 3 vectors of B and 4 weights for 12 FMAs. The last 8 or 16
/// columns take a narrower block.
@inline(__always)
func pointwiseGEMM<E: PointwiseEpilogue>(_ epilogue: E, _ b: UnsafePointer<Float>, ldb: Int,
                                         weight: UnsafePointer<Float>, rows: Range<Int>, k: Int, columns: Int) {
    let zero = SIMD8<Float>()
    // 4 rows from `r` x `nv` vectors from column `col`; inlined with a constant `nv`, the unused
    // accumulators and loads fold away. (Nested functions take everything as parameters: one
    // that captured the loop's `var`s would box them on the heap on every call.)
    @inline(__always) func block(_ r: Int, _ col: Int, _ nv: Int) {
        let w0 = weight + (r - rows.lowerBound) * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
        var x00 = zero, x01 = zero, x02 = zero, x10 = zero, x11 = zero, x12 = zero
        var x20 = zero, x21 = zero, x22 = zero, x30 = zero, x31 = zero, x32 = zero
        var bp = b + col
        for kk in 0..<k {
            let v0 = load8(bp), v1 = nv > 1 ? load8(bp + 8) : zero, v2 = nv > 2 ? load8(bp + 16) : zero
            // One weight of each row times the loaded vectors.
            @inline(__always) func row(_ w: Float, _ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>, _ c: inout SIMD8<Float>) {
                let s = SIMD8(repeating: w)
                a = a.addingProduct(s, v0)
                if nv > 1 { b = b.addingProduct(s, v1) }
                if nv > 2 { c = c.addingProduct(s, v2) }
            }
            row(w0[kk], &x00, &x01, &x02); row(w1[kk], &x10, &x11, &x12)
            row(w2[kk], &x20, &x21, &x22); row(w3[kk], &x30, &x31, &x32)
            bp += ldb
        }
        epilogue.store(x00, row: r, col: col); epilogue.store(x10, row: r + 1, col: col)
        epilogue.store(x20, row: r + 2, col: col); epilogue.store(x30, row: r + 3, col: col)
        if nv > 1 {
            epilogue.store(x01, row: r, col: col + 8); epilogue.store(x11, row: r + 1, col: col + 8)
            epilogue.store(x21, row: r + 2, col: col + 8); epilogue.store(x31, row: r + 3, col: col + 8)
        }
        if nv > 2 {
            epilogue.store(x02, row: r, col: col + 16); epilogue.store(x12, row: r + 1, col: col + 16)
            epilogue.store(x22, row: r + 2, col: col + 16); epilogue.store(x32, row: r + 3, col: col + 16)
        }
    }
    for r in stride(from: rows.lowerBound, to: rows.upperBound, by: 4) {
        var col = 0
        while col + 24 <= columns { block(r, col, 3); col += 24 }
        if columns - col >= 16 { block(r, col, 2); col += 16 }
        if col < columns { block(r, col, 1) }
    }
}
