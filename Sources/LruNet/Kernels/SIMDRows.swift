// Explicit 8-wide loops for row reductions and elementwise epilogues. LLVM
// will not vectorise a float sum without reassociation, nor Swift's `max`
// (it keeps NaN ordering), so these are written out. Two accumulators hide
// the add latency.

/// max(v, 0) lane by lane, as one `vmaxps`. (The standard library's `pointwiseMax`
/// is a generic call per vector, not inlined: it cost a tenth of a forward pass.)
@inline(__always) func relu8(_ v: SIMD8<Float>) -> SIMD8<Float> {
    v.replacing(with: 0, where: v .< SIMD8<Float>())
}

@inline(__always) func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var i = 0
    while i + 16 <= n { a += load8(x + i); b += load8(x + i + 8); i += 16 }
    var s = (a + b).sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

/// Sum of (x - mean)^2.
@inline(__always) func rowCenteredSquares(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
    let m = SIMD8(repeating: mean)
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        let d0 = load8(x + i) - m, d1 = load8(x + i + 8) - m
        a = a.addingProduct(d0, d0); b = b.addingProduct(d1, d1); i += 16
    }
    var s = (a + b).sum()
    while i < n { let d = x[i] - mean; s += d * d; i += 1 }
    return s
}

/// (sum of y, sum of y * (x - mean)).
@inline(__always) func rowSumAndCenteredDot(_ y: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> (Float, Float) {
    let m = SIMD8(repeating: mean)
    var s = SIMD8<Float>(), d = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let yv = load8(y + i)
        s += yv; d = d.addingProduct(yv, load8(x + i) - m); i += 8
    }
    var ss = s.sum(), dd = d.sum()
    while i < n { ss += y[i]; dd += y[i] * (x[i] - mean); i += 1 }
    return (ss, dd)
}

/// out = x*s + b (+ r) (then ReLU), over one row.
@inline(__always) func rowAffine(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, scale: Float, shift: Float,
                                 residual r: UnsafePointer<Float>?, relu: Bool) {
    let s = SIMD8(repeating: scale), b = SIMD8(repeating: shift)
    var i = 0
    while i + 8 <= n {
        var v = b.addingProduct(load8(x + i), s)
        if let r { v += load8(r + i) }
        if relu { v = relu8(v) }
        store8(v, out + i)
        i += 8
    }
    while i < n {
        var v = x[i] * scale + shift
        if let r { v += r[i] }
        out[i] = relu ? (v > 0 ? v : 0) : v
        i += 1
    }
}

/// g = (mask > 0) ? x : 0: an output gradient through a ReLU whose output was `mask`.
@inline(__always) func rowReLUGradient(_ g: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, output mask: UnsafePointer<Float>, _ n: Int) {
    let zero = SIMD8<Float>()
    var i = 0
    while i + 8 <= n { store8(load8(x + i).replacing(with: 0, where: load8(mask + i) .<= zero), g + i); i += 8 }
    while i < n { g[i] = mask[i] > 0 ? x[i] : 0; i += 1 }
}

/// a += b.
@inline(__always) func rowAdd(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(load8(a + i) + load8(b + i), a + i); i += 8 }
    while i < n { a[i] += b[i]; i += 1 }
}

/// out = a + b (out may not overlap a or b).
@inline(__always) func rowAdd(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(load8(a + i) + load8(b + i), out + i); i += 8 }
    while i < n { out[i] = a[i] + b[i]; i += 1 }
}
