/// Geometry of a 2-D convolution or pooling window, shared by the kernels.
public struct ConvGeometry: Equatable, Sendable {
    public var kernelH: Int, kernelW: Int
    public var stride: Int, padding: Int

    public init(kernel: Int, stride: Int = 1, padding: Int = 0) {
        kernelH = kernel; kernelW = kernel; self.stride = stride; self.padding = padding
    }
    public init(kernelH: Int, kernelW: Int, stride: Int, padding: Int) {
        self.kernelH = kernelH; self.kernelW = kernelW; self.stride = stride; self.padding = padding
    }

    public func outputSize(_ size: Int, kernel: Int) -> Int { (size + 2 * padding - kernel) / stride + 1 }
    public func outputHeight(_ h: Int) -> Int { outputSize(h, kernel: kernelH) }
    public func outputWidth(_ w: Int) -> Int { outputSize(w, kernel: kernelW) }

    /// The output indices `o` whose input index `o*stride - padding + k` lies in `0..<size`.
    @inline(__always)
    func validRange(kernelOffset k: Int, inputSize size: Int, outputSize osize: Int) -> Range<Int> {
        // o*s >= p - k   and   o*s <= size - 1 + p - k
        let lo = max(0, ceilDiv(padding - k, stride))
        let hi = min(osize - 1, floorDiv(size - 1 + padding - k, stride))
        return lo <= hi ? lo..<(hi + 1) : 0..<0
    }
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

// im2col / col2im over a whole batch in CNHW layout.
// in: channels [C][N][H][W] (only `channels` rows starting at `input`)
// col: [C*kh*kw][N*Ho*Wo]; row (c, ky, kx) holds the input value each output position reads.

func im2col(_ col: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
            channels: Int, batch: Int, height: Int, width: Int, geometry g: ConvGeometry,
            threading: Threading) {
    let rows = channels * g.kernelH * g.kernelW
    let pass = WindowPass(out: Rows(col), input: ConstRows(input), batch: batch, height: height, width: width, geometry: g)
    threading.parallelFor(rows, minPerThread: 8, pass) { args, range in
        let p = args.pointee, col = p.out.base, input = p.input.base, batch = p.batch, height = p.height, width = p.width
        let g = p.geometry, ho = p.outputHeight, wo = p.outputWidth, rowLen = batch * ho * wo
        for r in range {
            let c = r / (g.kernelH * g.kernelW), ky = (r / g.kernelW) % g.kernelH, kx = r % g.kernelW
            let dst = col + r * rowLen
            dst.update(repeating: 0, count: rowLen)
            let ys = g.validRange(kernelOffset: ky, inputSize: height, outputSize: ho)
            let xs = g.validRange(kernelOffset: kx, inputSize: width, outputSize: wo)
            for n in 0..<batch {
                let src = input + (c * batch + n) * height * width
                let out = dst + n * ho * wo
                for oy in ys {
                    let srow = src + (oy * g.stride - g.padding + ky) * width - g.padding + kx
                    let orow = out + oy * wo
                    for ox in xs { orow[ox] = srow[ox * g.stride] }
                }
            }
        }
    }
}

/// The adjoint of ``im2col``: adds each column entry back into the input
/// position it was read from (`grad` must be zeroed or hold a sum to add to).
func col2im(_ grad: UnsafeMutablePointer<Float>, _ col: UnsafePointer<Float>,
            channels: Int, batch: Int, height: Int, width: Int, geometry g: ConvGeometry,
            threading: Threading) {
    // Parallel over channels: each channel's rows write only its own input plane.
    let pass = WindowPass(out: Rows(grad), input: ConstRows(col), batch: batch, height: height, width: width, geometry: g)
    threading.parallelFor(channels, pass) { args, range in
        let p = args.pointee, grad = p.out.base, col = p.input.base, batch = p.batch, height = p.height, width = p.width
        let g = p.geometry, ho = p.outputHeight, wo = p.outputWidth, k2 = g.kernelH * g.kernelW, rowLen = batch * ho * wo
        for c in range {
            for kk in 0..<k2 {
                let ky = kk / g.kernelW, kx = kk % g.kernelW
                let src = col + (c * k2 + kk) * rowLen
                let ys = g.validRange(kernelOffset: ky, inputSize: height, outputSize: ho)
                let xs = g.validRange(kernelOffset: kx, inputSize: width, outputSize: wo)
                for n in 0..<batch {
                    let dst = grad + (c * batch + n) * height * width
                    for oy in ys {
                        let drow = dst + (oy * g.stride - g.padding + ky) * width - g.padding + kx
                        let srow = src + n * ho * wo + oy * wo
                        for ox in xs { drow[ox * g.stride] += srow[ox] }
                    }
                }
            }
        }
    }
}

/// A region over planes and a window (im2col, col2im, pooling): each thread writes the rows or
/// planes of `out` its range names, and reads `input`.
struct WindowPass: Sendable {
    let out: Rows, input: ConstRows
    var argmax: IndexRows? = nil
    let batch: Int, height: Int, width: Int, geometry: ConvGeometry
    var outputHeight: Int { geometry.outputHeight(height) }
    var outputWidth: Int { geometry.outputWidth(width) }
}
