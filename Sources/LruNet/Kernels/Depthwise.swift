import CLruNetKernels

// Direct depthwise convolution (groups == input channels, channel multiplier
// `mult` >= 1), CNHW layout. Output channel `o` reads input channel `o / mult`
// with its own kh x kw filter. A GEMM per channel would be K = 9 wide: far too
// thin for BLAS, so this is a direct loop whose inner row loop vectorises.

/// out: [C*mult][N][Ho][Wo]   input: [C][N][H][W]   weight: [C*mult][kh*kw]
/// With `scratch`, 3x3 with padding 1 runs a SIMD kernel: channels in the lanes on small planes
/// at small batches (DepthwiseChannelLanes.swift), else stride 1 the kernels of
/// Depthwise3x3.swift, stride 2 the polyphase one.
/// With `scale`/`shift`, applies `y = act(y*scale[o] + shift[o])` (inference BatchNorm and the
/// activation after it) as an epilogue.
package func depthwiseForward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                      _ weight: UnsafePointer<Float>,
                      channels: Int, multiplier mult: Int, batch: Int, height: Int, width: Int,
                      geometry g: ConvGeometry,
                      scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, activation: ActivationKind = .none,
                      scratch: Scratch? = nil, threading: Threading) {
    if scratch != nil, usesChannelLanes(batch: batch, height: height, width: width, geometry: g) {
        depthwiseChannelLanesForward(out, input, weight, channels: channels, multiplier: mult, batch: batch, height: height,
                                     width: width, stride: g.stride, scale: scale, shift: shift, activation: activation,
                                     threading: threading)
        return
    }
    if let scratch, g == ConvGeometry(kernel: 3, stride: 1, padding: 1) {
        let need = depthwise3x3ScratchCount(height: height, width: width, batch: batch, threads: threading.threads)
        depthwise3x3Forward(out, input, weight, channels: channels, multiplier: mult, batch: batch,
                            height: height, width: width, scale: scale, shift: shift, activation: activation,
                            scratch: scratch.reserve(need), threading: threading)
        return
    }
    if g == ConvGeometry(kernel: 3, stride: 2, padding: 1), let scratch {
        // The C kernel for the baselines' downsampling: one input channel over the batch per call.
        let per = lru_dw3s2_scratch_count(height, width), s = scratch.reserve(threading.threads * per)
        let pass = DirectPass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight), scale: scale.map(ConstRows.init),
                              shift: shift.map(ConstRows.init), activation: activation, multiplier: mult, batch: batch,
                              height: height, width: width, geometry: g, scratch: Rows(s), scratchPerWorker: per,
                              channels: channels, byImages: splitsImages(channels: channels, batch: batch, threading: threading))
        // Each thread its own channels, or (``splitsImages``) its own images of every channel.
        threading.parallelChunks(pass.byImages ? batch : channels, minPerThread: 1, pass) { args, worker, range in
            let r = args.pointee, mult = r.multiplier, batch = r.batch, height = r.height, width = r.width
            let ho = (height - 1) / 2 + 1, wo = (width - 1) / 2 + 1, row = batch * ho * wo
            let (channels, images) = r.byImages ? (0..<r.channels, range) : (range, 0..<batch)
            for c in channels {
                lru_dw3s2_forward(r.out + c * mult * row + images.lowerBound * ho * wo,
                                  r.input + (c * batch + images.lowerBound) * height * width, images.count, height, width,
                                  r.weight + c * mult * 9, mult, row, r.scale.map { $0 + c * mult }, r.shift.map { $0 + c * mult },
                                  r.activation.rawValue, r.scratch! + worker * r.scratchPerWorker)
            }
        }
        return
    }
    defer {
        if activation != .none {
            activationForward(out, out, kind: activation, count: channels * mult * batch * g.outputHeight(height) * g.outputWidth(width),
                              threading: threading)
        }
    }
    let outChannels = channels * mult
    let pass = DirectPass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight), scale: scale.map(ConstRows.init),
                          shift: shift.map(ConstRows.init), activation: .none, multiplier: mult, batch: batch,
                          height: height, width: width, geometry: g, scratch: nil, scratchPerWorker: 0)
    threading.parallelFor(outChannels * batch, minPerThread: 4, pass) { args, range in
        let r = args.pointee, out = r.out.base, input = r.input.base, weight = r.weight.base, scale = r.scale?.base, shift = r.shift?.base
        let mult = r.multiplier, batch = r.batch, height = r.height, width = r.width, g = r.geometry
        let ho = g.outputHeight(height), wo = g.outputWidth(width), kArea = g.kernelH * g.kernelW
        for job in range {
            let o = job / batch, n = job % batch
            let src = input + ((o / mult) * batch + n) * height * width
            let dst = out + job * ho * wo
            let w = weight + o * kArea
            dst.update(repeating: 0, count: ho * wo)
            for ky in 0..<g.kernelH {
                let ys = g.validRange(kernelOffset: ky, inputSize: height, outputSize: ho)
                for kx in 0..<g.kernelW {
                    let xs = g.validRange(kernelOffset: kx, inputSize: width, outputSize: wo)
                    let wv = w[ky * g.kernelW + kx]
                    if g.stride == 1 {
                        for oy in ys {
                            let srow = src + (oy - g.padding + ky) * width - g.padding + kx
                            let drow = dst + oy * wo
                            for ox in xs { drow[ox] += wv * srow[ox] }
                        }
                    } else {
                        for oy in ys {
                            let srow = src + (oy * g.stride - g.padding + ky) * width - g.padding + kx
                            let drow = dst + oy * wo
                            for ox in xs { drow[ox] += wv * srow[ox * g.stride] }
                        }
                    }
                }
            }
            if let scale, let shift {
                let s = scale[o], b = shift[o]
                for i in 0..<(ho * wo) { dst[i] = dst[i] * s + b }
            }
        }
    }
}

/// Gradients of ``depthwiseForward`` (without epilogue). With `scratch`, the 3x3/1/1 case
/// runs the SIMD kernel of Depthwise3x3.swift.
/// gradInput: [C][N][H][W], overwritten unless `accumulateInput`; with `addToInput`, that
/// gradient (a residual path's, same layout) is added in the same pass.
/// gradWeight: [C*mult][kh*kw], always accumulated (beta = 1) so reused layers sum over applications.
func depthwiseBackward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                       gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                       weight: UnsafePointer<Float>,
                       channels: Int, multiplier mult: Int, batch: Int, height: Int, width: Int,
                       geometry g: ConvGeometry, accumulateInput: Bool = false, addToInput: UnsafePointer<Float>? = nil,
                       scratch: Scratch? = nil, threading: Threading) {
    if let scratch, !accumulateInput, g == ConvGeometry(kernel: 3, stride: 1, padding: 1) {
        let need = depthwise3x3ScratchCount(height: height, width: width, batch: batch, threads: threading.threads)
        depthwise3x3Backward(gradInput: gradInput, gradWeight: gradWeight, gradOutput: gradOutput, input: input,
                             weight: weight, channels: channels, multiplier: mult, batch: batch, height: height,
                             width: width, addToInput: addToInput, scratch: scratch.reserve(need), threading: threading)
        return
    }
    // Parallel over input channels: channel c owns gradInput[c] and gradWeight[c*mult ..< (c+1)*mult].
    let pass = DirectGradientPass(gradInput: gradInput.map(Rows.init), gradWeight: Rows(gradWeight), gradOutput: ConstRows(gradOutput),
                                  input: ConstRows(input), weight: ConstRows(weight), addToInput: addToInput.map(ConstRows.init),
                                  accumulateInput: accumulateInput, multiplier: mult, batch: batch, height: height, width: width,
                                  geometry: g)
    threading.parallelFor(channels, pass) { args, range in
        let r = args.pointee, gradInput = r.gradInput?.base, gradWeight = r.gradWeight.base, gradOutput = r.gradOutput.base
        let input = r.input.base, weight = r.weight.base, addToInput = r.addToInput?.base, accumulateInput = r.accumulateInput
        let mult = r.multiplier, batch = r.batch, height = r.height, width = r.width, g = r.geometry
        let ho = g.outputHeight(height), wo = g.outputWidth(width), kArea = g.kernelH * g.kernelW
        for c in range {
            for n in 0..<batch {
                let src = input + (c * batch + n) * height * width
                let gin = gradInput.map { $0 + (c * batch + n) * height * width }
                if let gin, !accumulateInput { gin.update(repeating: 0, count: height * width) }
                if let gin, let addToInput { rowAdd(gin, gin, addToInput + (c * batch + n) * height * width, height * width) }
                for m in 0..<mult {
                    let o = c * mult + m
                    let gout = gradOutput + (o * batch + n) * ho * wo
                    let w = weight + o * kArea, gw = gradWeight + o * kArea
                    for ky in 0..<g.kernelH {
                        let ys = g.validRange(kernelOffset: ky, inputSize: height, outputSize: ho)
                        for kx in 0..<g.kernelW {
                            let xs = g.validRange(kernelOffset: kx, inputSize: width, outputSize: wo)
                            let wv = w[ky * g.kernelW + kx]
                            var acc: Float = 0
                            for oy in ys {
                                let off = (oy * g.stride - g.padding + ky) * width - g.padding + kx
                                let grow = gout + oy * wo
                                let srow = src + off
                                if let gin {
                                    let irow = gin + off
                                    for ox in xs {
                                        acc += grow[ox] * srow[ox * g.stride]
                                        irow[ox * g.stride] += wv * grow[ox]
                                    }
                                } else {
                                    for ox in xs { acc += grow[ox] * srow[ox * g.stride] }
                                }
                            }
                            gw[ky * g.kernelW + kx] += acc
                        }
                    }
                }
            }
        }
    }
}

/// A direct depthwise region: each thread its own output rows (and, stride 2, its own scratch).
private struct DirectPass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, scale: ConstRows?, shift: ConstRows?
    let activation: ActivationKind
    let multiplier: Int, batch: Int, height: Int, width: Int, geometry: ConvGeometry
    let scratch: Rows?, scratchPerWorker: Int
    /// The stride-2 kernel's split: all channels and a share of the images per thread when true.
    var channels = 0, byImages = false
}

/// Each thread its own input channels: their gradient rows and their outputs' weight gradients.
private struct DirectGradientPass: Sendable {
    let gradInput: Rows?, gradWeight: Rows, gradOutput: ConstRows, input: ConstRows, weight: ConstRows, addToInput: ConstRows?
    let accumulateInput: Bool
    let multiplier: Int, batch: Int, height: Int, width: Int, geometry: ConvGeometry
}
