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
