// Grouped 2-D convolution as im2col + sgemm over the whole batch (CNHW).
// For group g:  out_g[Cout/G][N*Ho*Wo] = W_g[Cout/G][Cin/G*kh*kw] x col_g[Cin/G*kh*kw][N*Ho*Wo].
// A 1x1 stride-1 unpadded conv needs no im2col: the input rows are the columns.

package struct ConvShape: Equatable, Sendable {
    var inChannels: Int, outChannels: Int, groups: Int
    var geometry: ConvGeometry
    var batch: Int, height: Int, width: Int

    package init(inChannels: Int, outChannels: Int, groups: Int, geometry: ConvGeometry, batch: Int, height: Int, width: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.groups = groups
        self.geometry = geometry; self.batch = batch; self.height = height; self.width = width
    }

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
    package var columnBufferCount: Int { isPointwise ? 0 : k * columns }
}

/// The GEMM's B matrix for group g: the input rows themselves for a 1x1 conv, else im2col of them.
@inline(__always)
private func gemmColumns(group g: Int, input: UnsafePointer<Float>, shape s: ConvShape,
                         columns col: UnsafeMutablePointer<Float>?, threading: Threading) -> UnsafePointer<Float> {
    let src = input + g * s.inPerGroup * s.batch * s.height * s.width
    if s.isPointwise { return src }
    im2col(col!, src, channels: s.inPerGroup, batch: s.batch, height: s.height, width: s.width,
           geometry: s.geometry, threading: threading)
    return UnsafePointer(col!)
}

/// out: [Cout][N][Ho][Wo]; input: [Cin][N][H][W]; weight: [Cout][Cin/G][kh][kw] (PyTorch's layout).
package func convForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, shape s: ConvShape,
                 columns col: UnsafeMutablePointer<Float>?, threading: Threading) {
    if s.isPointwise && s.groups >= threading.threads {
        // Groups are independent GEMMs: hand them out to the threads.
        let pass = GroupPass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight), gradOutput: nil, shape: s)
        threading.parallelFor(s.groups, pass) { args, groups in
            let r = args.pointee, s = r.shape, inRow = s.batch * s.height * s.width
            for g in groups {
                sgemm(m: s.outPerGroup, n: s.columns, k: s.k, r.weight + g * s.outPerGroup * s.k,
                      r.input + g * s.inPerGroup * inRow, r.out + g * s.outPerGroup * s.columns)
            }
        }
    } else {
        for g in 0..<s.groups {
            let b = gemmColumns(group: g, input: input, shape: s, columns: col, threading: threading)
            sgemmColumnsParallel(m: s.outPerGroup, n: s.columns, k: s.k, weight + g * s.outPerGroup * s.k, b,
                                 out + g * s.outPerGroup * s.columns, threading: threading)
        }
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
    if s.isPointwise && s.groups >= threading.threads {
        let pass = GroupPass(out: Rows(gradWeight), input: ConstRows(input), weight: ConstRows(weight),
                             gradOutput: ConstRows(gradOutput), gradInput: gradInput.map(Rows.init), shape: s)
        threading.parallelFor(s.groups, pass) { args, groups in
            let r = args.pointee, s = r.shape, inRow = s.batch * s.height * s.width
            for g in groups {
                let gout = r.gradOutput! + g * s.outPerGroup * s.columns
                let w = r.weight + g * s.outPerGroup * s.k
                // dW_g += dOut_g x in_g^T ;  dIn_g = W_g^T x dOut_g
                sgemm(transB: true, m: s.outPerGroup, n: s.k, k: s.columns, gout, r.input + g * s.inPerGroup * inRow,
                      beta: 1, r.out + g * s.outPerGroup * s.k)
                if let gradInput = r.gradInput {
                    sgemm(transA: true, m: s.k, n: s.columns, k: s.outPerGroup, w, gout, gradInput + g * s.inPerGroup * inRow)
                }
            }
        }
    } else {
        for g in 0..<s.groups {
            let gout = gradOutput + g * s.outPerGroup * s.columns
            let w = weight + g * s.outPerGroup * s.k
            let b = gemmColumns(group: g, input: input, shape: s, columns: col, threading: threading)
            // dW_g += dOut_g x col_g^T: a reduction over columns, so split the rows of dW instead.
            let rowBlocks = min(threading.threads, s.outPerGroup)
            let pass = WeightRowsPass(gradWeight: Rows(gradWeight + g * s.outPerGroup * s.k), gradOutput: ConstRows(gout),
                                      columns: ConstRows(b), shape: s, blocks: rowBlocks)
            threading.parallelFor(rowBlocks, pass) { args, blocks in
                let r = args.pointee, s = r.shape
                for blk in blocks {
                    let lo = s.outPerGroup * blk / r.blocks, hi = s.outPerGroup * (blk + 1) / r.blocks
                    sgemm(transB: true, m: hi - lo, n: s.k, k: s.columns, r.gradOutput + lo * s.columns, r.columns.base, beta: 1,
                          r.gradWeight + lo * s.k)
                }
            }
            guard let gradInput else { continue }
            // dcol_g = W_g^T x dOut_g, then scatter back (1x1: straight into the input gradient).
            let gin = gradInput + g * s.inPerGroup * inRow
            if s.isPointwise {
                sgemmColumnsParallel(transA: true, m: s.k, n: s.columns, k: s.outPerGroup, w, gout, gin, threading: threading)
            } else {
                sgemmColumnsParallel(transA: true, m: s.k, n: s.columns, k: s.outPerGroup, w, gout, col!, threading: threading)
                gin.update(repeating: 0, count: s.inPerGroup * inRow)
                col2im(gin, col!, channels: s.inPerGroup, batch: s.batch, height: s.height, width: s.width,
                       geometry: s.geometry, threading: threading)
            }
        }
    }
    if let gradBias { accumulateRowSums(gradBias, gradOutput, channels: s.outChannels, rowLength: s.columns) }
}

/// One GEMM per group, each thread its own groups: forward writes their rows of `out`;
/// backward accumulates their rows of the weight gradient (`out`) and writes their input gradients.
private struct GroupPass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, gradOutput: ConstRows?
    var gradInput: Rows? = nil
    let shape: ConvShape
}

/// One group's weight gradient split by rows, each thread its own block of rows.
private struct WeightRowsPass: Sendable {
    let gradWeight: Rows, gradOutput: ConstRows, columns: ConstRows
    let shape: ConvShape, blocks: Int
}
