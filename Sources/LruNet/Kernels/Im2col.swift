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
    let ho = g.outputHeight(height), wo = g.outputWidth(width)
    let rows = channels * g.kernelH * g.kernelW
    let rowLen = batch * ho * wo
    threading.parallelFor(rows, minPerThread: 8, (col, input, batch, height, width, g, ho, wo, rowLen)) { args, range in
        let (col, input, batch, height, width, g, ho, wo, rowLen) = args.pointee
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
    let ho = g.outputHeight(height), wo = g.outputWidth(width)
    let k2 = g.kernelH * g.kernelW
    let rowLen = batch * ho * wo
    // Parallel over channels: each channel's rows write only its own input plane.
    threading.parallelFor(channels, (grad, col, batch, height, width, g, ho, wo, k2, rowLen)) { args, range in
        let (grad, col, batch, height, width, g, ho, wo, k2, rowLen) = args.pointee
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
