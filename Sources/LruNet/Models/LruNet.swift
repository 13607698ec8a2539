/// The Layer Reuse Network of Kopuklu et al. (ICIP 2019), built from the
/// layer graph with PyTorch's parameter names, so the authors' checkpoints
/// load by name.
///
/// ```swift
/// let model = try LruNet(contentsOf: "fashionmnist-lru10-09346.safetensors")
/// let logits = try model(Tensor(shape: [1, 1, 28, 28], data: pixels))   // [1, 10]
/// ```
///
/// Inputs are NCHW float32 in [0, 1] (the authors use `ToTensor` without
/// normalisation). Outputs are `[N, num_classes]`; the architecture ends in a
/// ReLU before the average pool, so they are never negative.
public final class LruNet {
    public let config: LruNetConfig
    /// All weights and running statistics, with gradients and momentum in the same layout.
    public let parameters: ParameterStore
    public let graph: Sequential
    /// Counts what each forward pass fetched; see ``costReport(height:width:)``.
    public let cache: ParameterCache
    let context: RunContext
    private var input = FloatBuffer(count: 0)
    private var logitGradient = FloatBuffer(count: 0)

    /// Set to an ``OpProfile`` to collect the time spent per kind of op.
    public var profile: OpProfile? {
        get { context.profile }
        set { context.profile = newValue }
    }

    /// Inference runs each reused block tile by tile, all its kernels fused (the default).
    /// Off, the blocks run layer by layer over the whole batch: the reference path the fused
    /// kernels are tested against, and the one whose ``profile`` splits time per op kind.
    /// Outputs agree to float rounding.
    public var fusedReuseBlocks: Bool {
        get { graph.layers.lazy.compactMap { $0 as? ReuseBlock }.first?.tiled ?? true }
        set { for case let block as ReuseBlock in graph.layers { block.tiled = newValue } }
    }

    /// Threads for OpenBLAS and the engine's own kernels.
    public var threading: Threading {
        get { context.threading }
        set { context.threading = newValue }
    }

    /// Builds an LruNet with PyTorch-default parameters (BN 1/0); call
    /// ``ParameterStore/initialise(seed:)`` to train it or ``load(_:)`` to use published weights.
    public init(config: LruNetConfig, threading: Threading = Threading()) throws {
        try InstructionSet.checkEnvironment()
        try config.validate()
        self.config = config
        let store = ParameterStore()
        parameters = store
        let w = config.widths, n = config.layerReuse
        var layers: [Layer] = [
            Conv2d(name: "features.0", store: store, inputChannels: config.inChannels, outputChannels: 64,
                   kernelSize: 3, stride: 2, padding: 1),
            BatchNorm2d(name: "features.1", store: store, channels: 64),
            ReLU(name: "features.2"),
        ]
        if config.widthMult == 2 { layers.append(ConcatSelf(name: "cat0")) }
        func pool(_ i: Int) -> Layer { Pool2d(name: "mpool\(i)", mode: .max, kernelSize: 3, stride: 2, padding: 1) }
        layers += [
            ReuseBlock(name: "stage1", store: store, planes: w[0], iterations: n), pool(1), ConcatSelf(name: "cat1"),
            ReuseBlock(name: "stage2", store: store, planes: w[1], iterations: n), pool(2), ConcatSelf(name: "cat2"),
            ReuseBlock(name: "stage3", store: store, planes: w[2], iterations: n), ConcatSelf(name: "cat3"),
            ReuseBlock(name: "stage4", store: store, planes: w[3], iterations: n), pool(4),
            Conv2d(name: "classifier.0", store: store, inputChannels: w[3], outputChannels: w[4], kernelSize: 1, groups: 8),
            BatchNorm2d(name: "classifier.1", store: store, channels: w[4]),
            ReLU(name: "classifier.2"),
            Dropout(name: "classifier.3", probability: config.dropout),
            Conv2d(name: "classifier.4", store: store, inputChannels: w[4], outputChannels: config.numClasses,
                   kernelSize: 1, bias: true),
            ReLU(name: "classifier.5"),
            Pool2d(name: "classifier.6", mode: .average, kernelSize: 2, stride: 1),
        ]
        graph = Sequential(layers)
        store.seal()
        cache = ParameterCache(store: store)
        context = RunContext(training: false, threading: threading, cache: cache)
    }

    /// Builds the model a checkpoint's metadata describes and loads its weights.
    public convenience init(contentsOf path: String, threading: Threading = Threading()) throws {
        let file = try SafeTensorsFile(path: path)
        try self.init(config: LruNetConfig(metadata: file.metadata), threading: threading)
        try load(file)
    }

    /// Copies every tensor of `file` into the model by PyTorch name. Fails on a
    /// missing, extra or mis-shaped tensor, leaving the model unchanged.
    public func load(_ file: SafeTensorsFile) throws {
        for name in file.names where parameters.ref(named: name) == nil {
            if name.hasSuffix("num_batches_tracked") { continue }   // PyTorch bookkeeping we do not need
            throw ModelError.unexpectedTensor(name)
        }
        for e in parameters.entries {
            guard let info = file.tensors[e.name] else { throw ModelError.missingTensor(e.name) }
            guard info.shape == e.shape else { throw ModelError.shapeMismatch(name: e.name, expected: e.shape, got: info.shape) }
        }
        for e in parameters.entries {
            try file.read(e.name, into: parameters.values.pointer + e.offset, count: e.count)
        }
    }

    /// The state dict with its metadata, for ``SafeTensorsFile/write(tensors:metadata:to:)``.
    public func stateDict() -> [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] {
        parameters.entries.map { e in
            (e.name, e.shape, UnsafeBufferPointer(start: parameters.values.pointer + e.offset, count: e.count))
        }
    }

    /// Runs the network on an NCHW batch and returns `[N, num_classes]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.shape.count == 4 else { throw ModelError.inputShape("expected [N, C, H, W], got \(x.shape)") }
        let n = x.shape[0]
        var out = Tensor(zeros: [n, config.numClasses])
        try x.data.withUnsafeBufferPointer { src in
            try out.data.withUnsafeMutableBufferPointer { dst in
                try infer(src.baseAddress!, batch: n, channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                          into: dst.baseAddress!)
            }
        }
        return out
    }

    /// Inference on raw NCHW memory; writes `[batch, num_classes]` to `output`.
    public func infer(_ x: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                      into output: UnsafeMutablePointer<Float>) throws {
        context.training = false
        let result = try forward(x, batch: batch, channels: channels, height: height, width: width)
        transposeLogits(result, into: output, batch: batch)
    }

    /// Plans for the input shape, converts NCHW to CNHW and runs the graph; returns the
    /// CNHW logits `[classes][N]`. Training mode follows `context.training`.
    func forward(_ x: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int) throws -> UnsafeMutablePointer<Float> {
        guard batch >= 1 else { throw ModelError.inputShape("batch size must be at least 1") }
        guard channels == config.inChannels else {
            throw ModelError.inputShape("model takes \(config.inChannels) input channel(s), got \(channels)")
        }
        let shape = ActivationShape(channels: channels, batch: batch, height: height, width: width)
        try plan(shape, training: context.training)
        context.timed(.other) { nchwToCnhw(x, input.pointer, n: batch, c: channels, plane: height * width) }
        cache.beginPass()
        return graph.forward(input.pointer, context)
    }

    func plan(_ shape: ActivationShape, training: Bool) throws {
        let out: ActivationShape
        do { out = try graph.plan(input: shape, training: training) }
        catch let e as PlanError { throw ModelError.inputShape(e.description) }
        guard out.height == 1, out.width == 1 else {
            throw ModelError.inputShape("a \(shape.height)x\(shape.width) input leaves a \(out.height)x\(out.width) map before the classifier view; LruNet takes 28x28 to 32x32-sized images")
        }
        if input.count != shape.count { input = FloatBuffer(count: shape.count) }
        if training && logitGradient.count != out.count { logitGradient = FloatBuffer(count: out.count) }
    }

    /// The planned buffer for d(loss)/d(logits), `[classes][N]`.
    func gradientOfLogits(count: Int) -> UnsafeMutablePointer<Float> {
        precondition(logitGradient.count == count, "logit gradient not planned")
        return logitGradient.pointer
    }

    func transposeLogits(_ cnhw: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, batch: Int) {
        let k = config.numClasses
        for c in 0..<k { for n in 0..<batch { output[n * k + c] = cnhw[c * batch + n] } }
    }
}
