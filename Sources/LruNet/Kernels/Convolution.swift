// Grouped 2-D convolution as im2col + sgemm over the whole batch (CNHW).
// For group g:  out_g[Cout/G][N*Ho*Wo] = W_g[Cout/G][Cin/G*kh*kw] x col_g[Cin/G*kh*kw][N*Ho*Wo].
// A 1x1 stride-1 unpadded conv needs no im2col: the input rows are the columns.

struct ConvShape: Equatable {
    var inChannels: Int, outChannels: Int, groups: Int
    var geometry: ConvGeometry
    var batch: Int, height: Int, width: Int

    var outHeight: Int { geometry.outputHeight(height) }
    var outWidth: Int { geometry.outputWidth(width) }
    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    /// GEMM inner dimension: one group's input channels times the kernel area.
    var k: Int { inPerGroup * geometry.kernelH * geometry.kernelW }
    /// GEMM columns: output positions over the batch.
    var columns: Int { batch * outHeight * outWidth }
    var isPointwise: Bool {
        geometry.kernelH == 1 && geometry.kernelW == 1 && geometry.stride == 1 && geometry.padding == 0
    }
    /// Floats of im2col workspace for one group (0 for pointwise).
    var columnBufferCount: Int { isPointwise ? 0 : k * columns }
}

/// out: [Cout][N][Ho][Wo]; input: [Cin][N][H][W]; weight: [Cout][Cin/G][kh][kw] (PyTorch's layout).
func convForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, shape s: ConvShape,
                 columns col: UnsafeMutablePointer<Float>?, threading: Threading) {
    let inRow = s.batch * s.height * s.width
    for g in 0..<s.groups {
        let src = input + g * s.inPerGroup * inRow
        let b: UnsafePointer<Float>
        if s.isPointwise {
            b = src
        } else {
            im2col(col!, src, channels: s.inPerGroup, batch: s.batch, height: s.height, width: s.width,
                   geometry: s.geometry, threading: threading)
            b = UnsafePointer(col!)
        }
        sgemm(m: s.outPerGroup, n: s.columns, k: s.k, weight + g * s.outPerGroup * s.k, b,
              out + g * s.outPerGroup * s.columns)
    }
    if let bias { addChannelBias(out, bias, channels: s.outChannels, rowLength: s.columns) }
}

/// Weight (and bias) gradients accumulate (beta = 1): a reused conv sums over its applications.
/// gradInput, when given, is overwritten.
func convBackward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                  gradBias: UnsafeMutablePointer<Float>?, gradOutput: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, weight: UnsafePointer<Float>, shape s: ConvShape,
                  columns col: UnsafeMutablePointer<Float>?, threading: Threading) {
    let inRow = s.batch * s.height * s.width
    for g in 0..<s.groups {
        let src = input + g * s.inPerGroup * inRow
        let gout = gradOutput + g * s.outPerGroup * s.columns
        let w = weight + g * s.outPerGroup * s.k
        // dW_g += dOut_g x col_g^T
        let b: UnsafePointer<Float>
        if s.isPointwise {
            b = src
        } else {
            im2col(col!, src, channels: s.inPerGroup, batch: s.batch, height: s.height, width: s.width,
                   geometry: s.geometry, threading: threading)
            b = UnsafePointer(col!)
        }
        sgemm(transB: true, m: s.outPerGroup, n: s.k, k: s.columns, gout, b, beta: 1,
              gradWeight + g * s.outPerGroup * s.k)
        guard let gradInput else { continue }
        // dcol_g = W_g^T x dOut_g, then scatter back (1x1: straight into the input gradient).
        let gin = gradInput + g * s.inPerGroup * inRow
        if s.isPointwise {
            sgemm(transA: true, m: s.k, n: s.columns, k: s.outPerGroup, w, gout, gin)
        } else {
            sgemm(transA: true, m: s.k, n: s.columns, k: s.outPerGroup, w, gout, col!)
            gin.update(repeating: 0, count: s.inPerGroup * inRow)
            col2im(gin, col!, channels: s.inPerGroup, batch: s.batch, height: s.height, width: s.width,
                   geometry: s.geometry, threading: threading)
        }
    }
    if let gradBias { accumulateRowSums(gradBias, gradOutput, channels: s.outChannels, rowLength: s.columns) }
}
