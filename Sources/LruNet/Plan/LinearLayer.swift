/// Fully connected layer on `cblas_sgemm`: `y = W x + b` with PyTorch's 2-D weight
/// `[out, in]` (`NAME.weight`, `NAME.bias`). Takes a 1x1 map (after a global pool): in CNHW
/// that is `[in][N]`, so the whole batch is one GEMM.
package final class LinearLayer: Layer {
    package let name: String
    package let inputFeatures: Int, outputFeatures: Int
    package let weight: ParameterRef
    package let bias: ParameterRef?
    unowned let store: ParameterStore
    private var buffers = LayerBuffers()

    package init(name: String, store: ParameterStore, inputFeatures: Int, outputFeatures: Int, bias: Bool = true) {
        self.name = name; self.store = store; self.inputFeatures = inputFeatures; self.outputFeatures = outputFeatures
        weight = store.declare("\(name).weight", shape: [outputFeatures, inputFeatures], role: .linearWeight,
                               fanIn: inputFeatures, fanOut: outputFeatures)
        self.bias = bias ? store.declare("\(name).bias", shape: [outputFeatures], role: .linearBias, fanIn: inputFeatures) : nil
    }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        guard input.channels == inputFeatures else {
            throw PlanError.channelMismatch(layer: name, expected: inputFeatures, got: input.channels)
        }
        guard input.height == 1, input.width == 1 else { throw PlanError.notFlat(layer: name, shape: input) }
        let out = ActivationShape(channels: outputFeatures, batch: input.batch, height: 1, width: 1)
        buffers.resize(input: input, output: out, training: training)
        return out
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        buffers.savedInput = input
        let n = buffers.input.batch, out = buffers.out
        // y[out][N] = W[out][in] x[in][N]
        sgemm(m: outputFeatures, n: n, k: inputFeatures, context.cache.fetch(weight), input, out)
        if let bias { addChannelBias(out, context.cache.fetch(bias), channels: outputFeatures, rowLength: n) }
        return out
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                          _ context: RunContext) -> UnsafeMutablePointer<Float>? {
        let n = buffers.input.batch
        // dW += dy[out][N] x^T[N][in];  db += row sums of dy;  dx[in][N] = W^T dy
        sgemm(transB: true, m: outputFeatures, n: inputFeatures, k: n, gradOutput, buffers.savedInput!, beta: 1, store.gradient(weight))
        if let bias { accumulateRowSums(store.gradient(bias), gradOutput, channels: outputFeatures, rowLength: n) }
        guard needInputGradient else { return nil }
        sgemm(transA: true, m: inputFeatures, n: n, k: outputFeatures, store.pointer(weight), gradOutput, buffers.gradIn)
        return buffers.gradIn
    }

    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(input, count: buffers.outputCount) { [unowned self] in self.buffers.place($0) }
    }

    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: buffers.gradientCount) { [unowned self] in self.buffers.placeGradient($0) }
    }

    package var summaries: [LayerSummary] {
        [LayerSummary(name: name, op: "linear \(inputFeatures)->\(outputFeatures)\(bias != nil ? " +bias" : "")", outputShape: buffers.output,
                      parameters: store.entry(weight).count + (bias.map { store.entry($0).count } ?? 0),
                      macs: [.linear: inputFeatures * outputFeatures])]
    }
}
