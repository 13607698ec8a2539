// The reuse block's depthwise conv: 3x3, stride 1, padding 1, channel
// multiplier `mult`. Planes here are small (14x14 down to 2x2), so a row loop
// is too short to vectorise. Instead each input plane is copied once into a
// zero-bordered plane with row stride S = W + 2; then output position
// j = y*S + x reads padded[j + ky*S + kx] for every tap, and the whole plane is
// one flat sweep of 8-wide SIMD vectors (the two junk columns per row are dropped).

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// Scratch floats one worker needs for planes of `height x width`.
func depthwise3x3ScratchPerWorker(height: Int, width: Int, multiplier: Int) -> Int {
    let s = width + 2
    let flat = (height * s + 7) & ~7
    return (flat + 2 * s + 8) + multiplier * flat
}

/// Same contract as ``depthwiseForward`` for the 3x3/1/1 case.
/// `scratch` holds `threading.threads * depthwise3x3ScratchPerWorker(...)` floats.
func depthwise3x3Forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                         _ weight: UnsafePointer<Float>, channels: Int, multiplier mult: Int,
                         batch: Int, height h: Int, width w: Int,
                         scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
                         scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    let s = w + 2
    let flat = (h * s + 7) & ~7
    let padCount = flat + 2 * s + 8
    let perWorker = padCount + mult * flat
    threading.parallelChunks(channels * batch, minPerThread: 2) { worker, range in
        let pad = scratch + worker * perWorker
        let acc = pad + padCount
        pad.update(repeating: 0, count: padCount)         // borders stay zero; interiors are overwritten
        for job in range {
            let c = job / batch, n = job % batch
            let src = input + job * h * w
            for y in 0..<h { (pad + (y + 1) * s + 1).update(from: src + y * w, count: w) }
            for m in 0..<mult {
                let o = c * mult + m
                let k = weight + o * 9
                let w0 = SIMD8(repeating: k[0]), w1 = SIMD8(repeating: k[1]), w2 = SIMD8(repeating: k[2])
                let w3 = SIMD8(repeating: k[3]), w4 = SIMD8(repeating: k[4]), w5 = SIMD8(repeating: k[5])
                let w6 = SIMD8(repeating: k[6]), w7 = SIMD8(repeating: k[7]), w8 = SIMD8(repeating: k[8])
                let a = acc + m * flat
                var j = 0
                while j < flat {
                    let r0 = UnsafePointer(pad + j), r1 = r0 + s, r2 = r1 + s
                    var v = w0 * load8(r0)
                    v += w1 * load8(r0 + 1); v += w2 * load8(r0 + 2)
                    v += w3 * load8(r1); v += w4 * load8(r1 + 1); v += w5 * load8(r1 + 2)
                    v += w6 * load8(r2); v += w7 * load8(r2 + 1); v += w8 * load8(r2 + 2)
                    store8(v, a + j)
                    j += 8
                }
                let dst = out + (o * batch + n) * h * w
                let sc = scale?[o] ?? 1, sh = shift?[o] ?? 0
                for y in 0..<h {
                    let row = a + y * s, drow = dst + y * w
                    for x in 0..<w { drow[x] = row[x] * sc + sh }
                }
            }
        }
    }
}

/// Scratch floats one worker needs for ``depthwise3x3Backward``.
func depthwise3x3BackwardScratchPerWorker(height: Int, width: Int) -> Int {
    let s = width + 2
    let flat = (height * s + 7) & ~7
    return 3 * (flat + 2 * s + 8)
}

/// Gradients of the 3x3/1/1 depthwise conv, same contract as ``depthwiseBackward``.
///
/// With the output gradient copied into a zero-bordered plane P (stride S):
///   dIn[j]     = sum_ab w[2-a][2-b] * P[j + a*S + b]        (the forward sweep with a flipped kernel)
///   dW[ky][kx] = sum_j  P[j + S + 1] * Pin[j + ky*S + kx]    (nine flat dot products; P's border
///                zeroes the junk columns), Pin the zero-bordered input plane.
func depthwise3x3Backward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                          gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                          channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                          scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    let s = w + 2
    let flat = (h * s + 7) & ~7
    let padCount = flat + 2 * s + 8
    let perWorker = 3 * padCount
    threading.parallelChunks(channels, minPerThread: 1) { worker, range in
        let pin = scratch + worker * perWorker, pout = pin + padCount, acc = pout + padCount
        pin.update(repeating: 0, count: 2 * padCount)      // borders stay zero; interiors are overwritten
        for c in range {
            for n in 0..<batch {
                let src = input + (c * batch + n) * h * w
                for y in 0..<h { (pin + (y + 1) * s + 1).update(from: src + y * w, count: w) }
                if gradInput != nil { acc.update(repeating: 0, count: flat) }
                for m in 0..<mult {
                    let o = c * mult + m
                    let g = gradOutput + (o * batch + n) * h * w
                    for y in 0..<h { (pout + (y + 1) * s + 1).update(from: g + y * w, count: w) }
                    // Weight gradient: nine dot products over the flat plane.
                    let d = UnsafePointer(pout + s + 1)
                    var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0
                    var j = 0
                    while j < flat {
                        let gv = load8(d + j)
                        let r0 = UnsafePointer(pin + j), r1 = r0 + s, r2 = r1 + s
                        a0 += gv * load8(r0); a1 += gv * load8(r0 + 1); a2 += gv * load8(r0 + 2)
                        a3 += gv * load8(r1); a4 += gv * load8(r1 + 1); a5 += gv * load8(r1 + 2)
                        a6 += gv * load8(r2); a7 += gv * load8(r2 + 1); a8 += gv * load8(r2 + 2)
                        j += 8
                    }
                    let gwo = gradWeight + o * 9
                    gwo[0] += a0.sum(); gwo[1] += a1.sum(); gwo[2] += a2.sum()
                    gwo[3] += a3.sum(); gwo[4] += a4.sum(); gwo[5] += a5.sum()
                    gwo[6] += a6.sum(); gwo[7] += a7.sum(); gwo[8] += a8.sum()
                    guard gradInput != nil else { continue }
                    // Input gradient: correlate the bordered output gradient with the flipped kernel.
                    let k = weight + o * 9
                    let w0 = SIMD8(repeating: k[8]), w1 = SIMD8(repeating: k[7]), w2 = SIMD8(repeating: k[6])
                    let w3 = SIMD8(repeating: k[5]), w4 = SIMD8(repeating: k[4]), w5 = SIMD8(repeating: k[3])
                    let w6 = SIMD8(repeating: k[2]), w7 = SIMD8(repeating: k[1]), w8 = SIMD8(repeating: k[0])
                    j = 0
                    while j < flat {
                        let r0 = UnsafePointer(pout + j), r1 = r0 + s, r2 = r1 + s
                        var v = load8(acc + j)
                        v += w0 * load8(r0); v += w1 * load8(r0 + 1); v += w2 * load8(r0 + 2)
                        v += w3 * load8(r1); v += w4 * load8(r1 + 1); v += w5 * load8(r1 + 2)
                        v += w6 * load8(r2); v += w7 * load8(r2 + 1); v += w8 * load8(r2 + 2)
                        store8(v, acc + j)
                        j += 8
                    }
                }
                if let gradInput {
                    let dst = gradInput + (c * batch + n) * h * w
                    for y in 0..<h { (dst + y * w).update(from: acc + y * s, count: w) }
                }
            }
        }
    }
}
