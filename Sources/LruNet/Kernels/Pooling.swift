import CLruNetKernels

// Max and average pooling over CNHW planes (one plane per (channel, image)).

/// Max pooling with implicit -infinity padding, as PyTorch. When `argmax` is given, stores the
/// winning input index within the plane for the backward pass (first maximum wins, like PyTorch).
func maxPoolForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                    argmax: UnsafeMutablePointer<Int32>?,
                    planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    if g == ConvGeometry(kernel: 3, stride: 2, padding: 1) {
        // LruNet's pooling: the C kernels (vectors of 8 outputs, PyTorch's tie and NaN rules).
        let pass = WindowPass(out: Rows(out), input: ConstRows(input), argmax: argmax.map(IndexRows.init), batch: 1, height: height,
                              width: width, geometry: g)
        threading.parallelFor(planes, minPerThread: 16, pass) { args, range in
            let p = args.pointee, out = p.out.base, input = p.input.base, argmax = p.argmax?.base
            let height = p.height, width = p.width, ho = p.outputHeight, wo = p.outputWidth
            if let argmax {
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * lru_maxpool_argmax_row_count(wo) + 8) { rows in
                    for p in range {
                        lru_maxpool3s2_argmax(out + p * ho * wo, argmax + p * ho * wo, input + p * height * width,
                                              height, width, ho, wo, rows.baseAddress!)
                    }
                }
            } else if width <= 16 {
                for p in range { lru_maxpool3s2_narrow(out + p * ho * wo, input + p * height * width, height, width, ho, wo) }
            } else {
                withUnsafeTemporaryAllocation(of: Float.self, capacity: width + 2) { row in
                    for p in range { lru_maxpool3s2(out + p * ho * wo, input + p * height * width, height, width, ho, wo, row.baseAddress!) }
                }
            }
        }
        return
    }
    let pass = WindowPass(out: Rows(out), input: ConstRows(input), argmax: argmax.map(IndexRows.init), batch: 1, height: height,
                          width: width, geometry: g)
    threading.parallelFor(planes, minPerThread: 16, pass) { args, range in
        let p = args.pointee, out = p.out.base, input = p.input.base, argmax = p.argmax?.base
        let height = p.height, width = p.width, g = p.geometry, ho = p.outputHeight, wo = p.outputWidth
        for p in range {
            let src = input + p * height * width, dst = out + p * ho * wo
            let idx = argmax.map { $0 + p * ho * wo }
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    var best = -Float.infinity, at = y0 * width + x0
                    for y in y0..<y1 {
                        for x in x0..<x1 where src[y * width + x] > best || src[y * width + x].isNaN {
                            best = src[y * width + x]; at = y * width + x
                        }
                    }
                    dst[oy * wo + ox] = best
                    idx?[oy * wo + ox] = Int32(at)
                }
            }
        }
    }
}

/// Routes each output gradient to the input its maximum came from (gradInput is overwritten).
func maxPoolBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                     argmax: UnsafePointer<Int32>, planes: Int, inputPlane: Int, outputPlane: Int,
                     threading: Threading) {
    let pass = RoutePass(gradInput: Rows(gradInput), gradOutput: ConstRows(gradOutput), argmax: ConstIndexRows(argmax),
                         inputPlane: inputPlane, outputPlane: outputPlane)
    threading.parallelFor(planes, minPerThread: 16, pass) { args, range in
        let r = args.pointee, inputPlane = r.inputPlane, outputPlane = r.outputPlane
        for p in range {
            let gi = r.gradInput + p * inputPlane, go = r.gradOutput + p * outputPlane, idx = r.argmax + p * outputPlane
            gi.update(repeating: 0, count: inputPlane)
            for i in 0..<outputPlane { gi[Int(idx[i])] += go[i] }
        }
    }
}

/// Average pooling, `count_include_pad=True` (PyTorch's default): divides by the window area.
func avgPoolForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                    planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    let pass = WindowPass(out: Rows(out), input: ConstRows(input), batch: 1, height: height, width: width, geometry: g)
    threading.parallelFor(planes, minPerThread: 64, pass) { args, range in
        let p = args.pointee, out = p.out.base, input = p.input.base, height = p.height, width = p.width, g = p.geometry
        let ho = p.outputHeight, wo = p.outputWidth, inv = 1 / Float(g.kernelH * g.kernelW)
        for p in range {
            let src = input + p * height * width, dst = out + p * ho * wo
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    var s: Float = 0
                    for y in y0..<y1 { for x in x0..<x1 { s += src[y * width + x] } }
                    dst[oy * wo + ox] = s * inv
                }
            }
        }
    }
}

func avgPoolBackward(_ gradInput: UnsafeMutablePointer<Float>, _ gradOutput: UnsafePointer<Float>,
                     planes: Int, height: Int, width: Int, geometry g: ConvGeometry, threading: Threading) {
    let pass = WindowPass(out: Rows(gradInput), input: ConstRows(gradOutput), batch: 1, height: height, width: width, geometry: g)
    threading.parallelFor(planes, minPerThread: 64, pass) { args, range in
        let p = args.pointee, gradInput = p.out.base, gradOutput = p.input.base, height = p.height, width = p.width
        let g = p.geometry, ho = p.outputHeight, wo = p.outputWidth, inv = 1 / Float(g.kernelH * g.kernelW)
        for p in range {
            let gi = gradInput + p * height * width, go = gradOutput + p * ho * wo
            gi.update(repeating: 0, count: height * width)
            for oy in 0..<ho {
                let y0 = max(oy * g.stride - g.padding, 0), y1 = min(oy * g.stride - g.padding + g.kernelH, height)
                for ox in 0..<wo {
                    let x0 = max(ox * g.stride - g.padding, 0), x1 = min(ox * g.stride - g.padding + g.kernelW, width)
                    let v = go[oy * wo + ox] * inv
                    for y in y0..<y1 { for x in x0..<x1 { gi[y * width + x] += v } }
                }
            }
        }
    }
}

/// Max pooling's backward: each thread its own planes of `gradInput`.
private struct RoutePass: Sendable {
    let gradInput: Rows, gradOutput: ConstRows, argmax: ConstIndexRows
    let inputPlane: Int, outputPlane: Int
}
