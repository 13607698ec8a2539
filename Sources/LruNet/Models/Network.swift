import Foundation

/// A network built from the layer graph, with PyTorch's parameter names so the authors'
/// checkpoints load by name: LruNet (Kopuklu et al., ICIP 2019) or one of the four networks
/// the paper compares it with (MobileNet, MobileNetV2, ShuffleNet, ShuffleNetV2).
///
/// ```swift
/// let model = try Network(contentsOf: "fashionmnist-lru10-09346.safetensors")
/// let logits = try model(Tensor(shape: [1, 1, 28, 28], data: pixels))   // [1, 10]
/// ```
///
/// Inputs are NCHW float32 in [0, 1] (the authors use `ToTensor` without normalisation).
/// Outputs are `[N, num_classes]`. A network holds its graph, the parameter store, the
/// parameter cache (which fetches each shared weight once per pass and counts what an unrolled
/// network would read) and the run context; plans are made per input shape and reused.
public final class Network {
    /// The built-in architecture this network is; nil for one built from your own description.
    public let config: ModelConfig?
    /// Channels of the input images.
    public let inputChannels: Int
    /// Outputs per image.
    public let classes: Int
    /// "lrunet N=10 width x1", or the name given to a network built from a description.
    public let summary: String
    /// Written beside the weights by ``save(to:metadata:)`` and by checkpoints.
    public let metadata: [String: String]
    /// How ``initialise(seed:)`` draws fresh weights.
    public let initialisation: InitScheme
    /// All weights and running statistics, with gradients and momentum in the same layout.
    public let parameters: ParameterStore
    /// The description's lowering: what training runs, and the unfused inference reference.
    package let graph: SequenceLayer
    /// The inference rewrite of `graph` (``FusionRewrite``), built on first use.
    private var fused: (root: SequenceLayer, decisions: [FusionRewrite.Decision])?
    /// Counts what each forward pass fetched; see ``costReport(height:width:)``.
    public let cache: ParameterCache
    package let context: RunContext
    private var input = FloatBuffer(count: 0)
    /// Inference: every layer's output, placed by liveness (``ActivationTrace``).
    private var activations = FloatBuffer(count: 0)
    /// Bytes of activations the current inference plan holds in its arena, and what the same
    /// outputs take as separate buffers (0 for a training plan, which keeps every output).
    package private(set) var activationBytes = (arena: 0, separate: 0)
    /// Training: every layer's input gradient, placed by liveness in backward order.
    private var gradients = FloatBuffer(count: 0)
    /// Bytes of input gradients the current training plan holds in its arena, and as separate buffers.
    package private(set) var gradientBytes = (arena: 0, separate: 0)
    private var logitGradient = FloatBuffer(count: 0)
    private var planned: (shape: ActivationShape, training: Bool, participants: Int)?
    /// What the inference rewrite joined, when the current plan runs it (empty in training).
    package var fusions: [FusionRewrite.Decision] {
        guard let p = planned, !p.training, fusesLayers else { return [] }
        return fused?.decisions ?? []
    }
    /// Whether inference times each layer on one thread and on all of ``threading`` when it
    /// plans a small pass (up to ``tunedPassMACs`` multiply-adds: batch 1 of the baselines),
    /// and runs each on the faster (the default). A layer of a few thousand multiply-adds per
    /// thread finishes sooner alone than the hand-off to the other threads takes. Results do
    /// not depend on it: the layers it may move give the same bits on any number of threads,
    /// and reused blocks always run on all.
    /// `LRUNET_TUNE_THREADS=0` in the environment sets the default to off.
    public var tunesThreadsPerLayer = getenv("LRUNET_TUNE_THREADS").map { String(cString: $0) != "0" } ?? true {
        didSet { planned = nil }
    }
    /// The largest pass (batch x multiply-adds per image) whose layers are timed at plan time.
    public static let tunedPassMACs = 16 << 20
    /// The current inference plan's leaf layers that run on one thread, and the leaf layers it
    /// could run so (zero and zero for a training plan or none).
    package var layersOnOneThread: (count: Int, of: Int) {
        guard let p = planned, !p.training else { return (0, 0) }
        let sequences = inferenceSequences()
        return (sequences.reduce(0) { $0 + $1.oneThread.filter { $0 }.count },
                sequences.reduce(0) { $0 + $1.layers.filter(Self.mayRunAlone).count })
    }

    /// Whether training places the input gradients in one arena (the default). Off, each layer
    /// keeps its own: the reference the arena is tested against.
    package var placesGradients = true {
        didSet { planned = nil }
    }
    /// Whether inference runs the rewritten tree (the default). Off, it runs the description's
    /// lowering, every layer on its own: the reference the fused layers are tested against.
    package var fusesLayers = true {
        didSet { planned = nil }
    }

    /// Set to an ``OpProfile`` to collect the time spent per kind of op.
    public var profile: OpProfile? {
        get { context.profile }
        set { context.profile = newValue }
    }

    /// Threads for the engine's kernels (OpenBLAS runs one thread per call).
    public var threading: Threading {
        get { context.threading }
        set { context.threading = newValue }
    }

    /// LruNet's inference runs each reused block tile by tile, all its kernels fused (the
    /// default). Off, the blocks run layer by layer over the whole batch: the reference path the
    /// fused kernels are tested against, and the one whose ``profile`` splits time per op kind.
    public var fusedReuseBlocks: Bool {
        get { reuseBlocks.first?.tiled ?? true }
        set { for block in reuseBlocks + inferenceBlocks { block.tiled = newValue } }
    }

    /// The reused blocks of the description's lowering.
    package var reuseBlocks: [ReuseBlock] { graph.allLayers.compactMap { $0 as? ReuseBlock } }
    private var inferenceBlocks: [ReuseBlock] { fused?.root.allLayers.compactMap { $0 as? ReuseBlock } ?? [] }

    /// The tree inference runs (the rewrite, unless ``fusesLayers`` is off).
    package var inferenceGraph: SequenceLayer { root(training: false) }

    /// What the inference rewrite joins, whether or not a plan runs it yet, in execution order.
    package var rewriteDecisions: [FusionRewrite.Decision] {
        if fused == nil { fused = FusionRewrite.inference(graph) }
        var order: [String: Int] = [:]
        for (i, layer) in graph.allLayers.enumerated() where order[layer.name] == nil { order[layer.name] = i }
        return fused!.decisions.enumerated().sorted {
            (order[$0.element.layers[0]] ?? 0, $0.offset) < (order[$1.element.layers[0]] ?? 0, $1.offset)
        }.map(\.element)
    }

    /// The tree a plan runs: training and the unfused reference run the description's lowering.
    private func root(training: Bool) -> SequenceLayer {
        guard !training && fusesLayers else { return graph }
        if let fused { return fused.root }
        let rewritten = FusionRewrite.inference(graph)
        fused = rewritten
        return rewritten.root
    }

    /// Builds the network `config` describes with PyTorch-default parameters (BatchNorm 1/0,
    /// zero weights); call ``initialise(seed:)`` to train it or ``load(_:)`` for published weights.
    /// - Throws: ``ModelError/invalidConfig(field:value:allowed:)``, or
    ///   ``InstructionSetError`` when `LRUNET_ISA` asks for kernels this CPU lacks.
    public convenience init(config: ModelConfig, threading: Threading = Threading()) throws {
        try self.init(config: config, threading: threading, checkpoint: nil)
    }

    /// Builds a network from your own description: any composition of the public modules,
    /// ``Reuse`` included. Its output must be a `classes x 1 x 1` map per image (end with a
    /// global pool and a ``Linear``, or a pooled 1x1 conv). Tensors take the description's
    /// PyTorch names, so ``save(to:metadata:)`` and ``load(_:)`` move weights by name.
    ///
    /// ```swift
    /// let net = try Network(Sequential {
    ///     Conv2d(1, 32, kernelSize: 3, stride: 2, padding: 1, bias: false)
    ///     BatchNorm2d(32)
    ///     ReLU()
    ///     GlobalAvgPool2d()
    ///     Linear(32, 10)
    /// }, inputChannels: 1, classes: 10, name: "tiny")
    /// ```
    /// - Throws: ``GraphError`` for a description that cannot be built.
    public convenience init(_ description: some Module, inputChannels: Int, classes: Int, name: String = "custom",
                            initialisation: InitScheme = .kaimingFanOut, threading: Threading = Threading()) throws {
        guard (1...64).contains(inputChannels) else {
            throw ModelError.invalidConfig(field: "in_channels", value: "\(inputChannels)", allowed: "1...64")
        }
        guard (1...100_000).contains(classes) else {
            throw ModelError.invalidConfig(field: "num_classes", value: "\(classes)", allowed: "1...100000")
        }
        try self.init(graph: description.graph, config: nil, inputChannels: inputChannels, classes: classes, summary: name,
                      metadata: ["arch": "custom", "name": name, "in_channels": "\(inputChannels)", "num_classes": "\(classes)"],
                      initialisation: initialisation, threading: threading, checkpoint: nil)
    }

    /// Builds the network a checkpoint's metadata describes and loads its weights: a safetensors
    /// file, or one of the authors' PyTorch `.t7` files (imported in memory, see ``TorchCheckpoint``).
    public convenience init(contentsOf path: String, threading: Threading = Threading()) throws {
        try self.init(checkpoint: try SafeTensorsFile.checkpoint(at: path).file, threading: threading)
    }

    /// Builds the network a safetensors file's metadata describes and loads its weights. The
    /// file's tensors are checked against the network's before any parameter memory is
    /// allocated, so a hostile file cannot make it allocate more than the file holds.
    public convenience init(checkpoint file: SafeTensorsFile, threading: Threading = Threading()) throws {
        try self.init(config: ModelConfig(metadata: file.metadata), threading: threading, checkpoint: file)
    }

    /// `selectsPatterns: false` compiles every Reuse to the general operators: the reference the
    /// fused block is tested against.
    package convenience init(config: ModelConfig, threading: Threading, checkpoint: SafeTensorsFile? = nil,
                             selectsPatterns: Bool = true) throws {
        try config.validate()
        try self.init(graph: config.graph, config: config, inputChannels: config.inChannels, classes: config.numClasses,
                      summary: config.summary, metadata: config.metadata, initialisation: config.arch.traits.initialisation,
                      threading: threading, checkpoint: checkpoint, selectsPatterns: selectsPatterns)
    }

    private init(graph description: Graph, config: ModelConfig?, inputChannels: Int, classes: Int, summary: String,
                 metadata: [String: String], initialisation: InitScheme, threading: Threading, checkpoint: SafeTensorsFile?,
                 selectsPatterns: Bool = true) throws {
        try InstructionSet.checkEnvironment()
        self.config = config
        self.inputChannels = inputChannels; self.classes = classes; self.summary = summary
        self.metadata = metadata; self.initialisation = initialisation
        let store = ParameterStore()
        parameters = store
        graph = SequenceLayer("", try GraphCompiler.layers(description, store: store, selectsPatterns: selectsPatterns))
        if let checkpoint { try Self.check(checkpoint, against: store.entries) }
        store.seal()
        cache = ParameterCache(store: store)
        context = RunContext(training: false, threading: threading, cache: cache)
        if let checkpoint { try load(checkpoint) }
    }

    /// Every tensor (PyTorch name and shape) the network `config` describes declares, without
    /// allocating them: what a checkpoint must hold to load.
    public static func declaredTensors(_ config: ModelConfig) throws -> [(name: String, shape: [Int])] {
        try config.validate()
        let store = ParameterStore()
        _ = try GraphCompiler.layers(config.graph, store: store)
        return store.entries.map { ($0.name, $0.shape) }
    }

    /// Fresh weights for training from scratch, as the authors' code initialises this architecture.
    public func initialise(seed: UInt64) {
        parameters.initialise(seed: seed, scheme: initialisation)
    }

    /// Copies every tensor of `file` into the model by PyTorch name. Fails on a missing, extra
    /// or mis-shaped tensor before changing anything.
    public func load(_ file: SafeTensorsFile) throws {
        try Self.check(file, against: parameters.entries)
        for e in parameters.entries { try file.read(e.name, into: parameters.values.pointer + e.offset, count: e.count) }
    }

    /// Every tensor the model declares is in `file` as F32 with its shape, and nothing else is
    /// (PyTorch's `num_batches_tracked` aside).
    private static func check(_ file: SafeTensorsFile, against entries: [ParameterEntry]) throws {
        let declared = Set(entries.map(\.name))
        for name in file.names where !declared.contains(name) {
            if name.hasSuffix("num_batches_tracked") { continue }   // PyTorch bookkeeping we do not need
            throw ModelError.unexpectedTensor(name: name)
        }
        for e in entries {
            guard let info = file.tensors[e.name] else { throw ModelError.missingTensor(name: e.name) }
            guard info.shape == e.shape else { throw ModelError.shapeMismatch(name: e.name, expected: e.shape, got: info.shape) }
            guard info.dtype == "F32" else { throw IOError.unsupported(path: file.path, detail: "tensor '\(e.name)' is \(info.dtype); only F32 is read") }
            if let (i, v) = file.firstNonFinite(e.name) { throw ModelError.nonFinite(what: "checkpoint tensor '\(e.name)'", index: i, value: v) }
        }
    }

    /// The state dict: every tensor by PyTorch name, a copy.
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.entries.map { e in
            (e.name, Tensor(shape: e.shape, data: Array(UnsafeBufferPointer(start: parameters.values.pointer + e.offset, count: e.count))))
        })
    }

    /// Writes the weights with this network's metadata (and `extra`) as safetensors, atomically.
    public func save(to path: String, metadata extra: [String: String] = [:]) throws {
        try SafeTensorsFile.write(tensors: parameterBuffers(), metadata: metadata.merging(extra) { _, new in new }, to: path)
    }

    /// The state dict as views of the arena, for writing without a copy.
    package func parameterBuffers() -> [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] {
        parameters.entries.map { e in (e.name, e.shape, UnsafeBufferPointer(start: parameters.values.pointer + e.offset, count: e.count)) }
    }

    /// Runs the network on an NCHW batch and returns `[N, num_classes]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (n, c, h, w) = try checkImages(x)
        var out = Tensor(zeros: [n, classes])
        try x.data.withUnsafeBufferPointer { src in
            try out.data.withUnsafeMutableBufferPointer { dst in
                try infer(src.baseAddress!, batch: n, channels: c, height: h, width: w, into: dst.baseAddress!)
            }
        }
        return out
    }

    /// `[N, C, H, W]` with the model's channels and at least one image.
    func checkImages(_ x: Tensor) throws -> (Int, Int, Int, Int) {
        guard x.shape.count == 4 else { throw ModelError.inputRank(got: x.shape) }
        guard x.shape[0] >= 1 else { throw ModelError.emptyBatch }
        guard x.shape[1] == inputChannels else { throw ModelError.inputChannels(expected: inputChannels, got: x.shape[1]) }
        return (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    }

    /// The most images inference runs in one pass, or nil (the default) to choose: a larger
    /// batch runs in chunks whose activations fit ``inferenceChunkBytes``, at least
    /// ``inferenceChunkMinimum`` images each. A layer's output for a chunk is then still in the
    /// caches when the next layer reads it, where a whole large batch streams every activation
    /// through memory. `LRUNET_INFER_CHUNK` in the environment sets a fixed default.
    public var inferenceChunk: Int? = getenv("LRUNET_INFER_CHUNK").flatMap { Int(String(cString: $0)) }.map { max($0, 1) }
    /// The activation arena a chosen chunk may fill.
    public static let inferenceChunkBytes = 16 << 20
    /// The fewest images of a chosen chunk: enough columns for the 1x1 GEMMs on small maps.
    public static let inferenceChunkMinimum = 16
    /// Activation arena bytes per image at ``inferenceChunkMinimum`` images of the size it was
    /// measured for; measured once per image size, so the chosen chunk does not change with the
    /// plans in between.
    private var bytesPerImage: (height: Int, width: Int, bytes: Int)?
    /// The batch of the current plan (0 before the first).
    package var plannedBatch: Int { planned?.shape.batch ?? 0 }

    /// Images per inference pass for a batch of `shape.batch`: the batch split into equal
    /// chunks of at most ``inferenceChunk`` images (or the chosen number).
    package func imagesPerPass(_ shape: ActivationShape) throws -> Int {
        let most = try chunkSize(shape), chunks = (shape.batch + most - 1) / most
        return (shape.batch + chunks - 1) / chunks
    }

    /// The most images per pass for a batch of `shape.batch` (see ``inferenceChunk``).
    package func chunkSize(_ shape: ActivationShape) throws -> Int {
        if let fixed = inferenceChunk { return min(max(fixed, 1), shape.batch) }
        let least = Self.inferenceChunkMinimum
        guard shape.batch > least else { return shape.batch }
        if bytesPerImage?.height != shape.height || bytesPerImage?.width != shape.width {
            try plan(ActivationShape(channels: shape.channels, batch: least, height: shape.height, width: shape.width), training: false)
            bytesPerImage = (shape.height, shape.width, max(activationBytes.arena / least, 1))
        }
        return min(shape.batch, max(least, Self.inferenceChunkBytes / bytesPerImage!.bytes))
    }

    /// Inference on raw NCHW memory; writes `[batch, num_classes]` to `output`.
    package func infer(_ x: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                       into output: UnsafeMutablePointer<Float>) throws {
        context.training = false
        if let i = firstNonFinite(x, batch * channels * height * width) { throw ModelError.nonFinite(what: "the input", index: i, value: x[i]) }
        // Large batches run in equal chunks; the last one ends at the last image and may
        // overlap the one before (its overlapped images are computed again, the same way).
        let size = try imagesPerPass(ActivationShape(channels: channels, batch: batch, height: height, width: width))
        let chunks = (batch + size - 1) / size
        let image = channels * height * width, k = classes
        for i in 0..<chunks {
            let start = min(i * size, batch - size)
            let result = try withFlushedDenormals { try forward(x + start * image, batch: size, channels: channels, height: height, width: width) }
            transposeLogits(result, into: output + start * k, batch: size)
        }
        if let i = firstNonFinite(output, batch * k) { throw ModelError.nonFiniteOutput(image: i / k, value: output[i]) }
    }

    /// The first weight, running statistic or momentum value that is not finite, so a run
    /// never saves a checkpoint that could not be loaded again.
    package func firstNonFiniteState() -> (tensor: String, value: Float)? {
        let store = parameters
        for e in store.entries {
            if let i = firstNonFinite(store.values.pointer + e.offset, e.count) { return (e.name, store.values.pointer[e.offset + i]) }
            if e.role.isTrainable, let i = firstNonFinite(store.momentum.pointer + e.offset, e.count) {
                return ("momentum." + e.name, store.momentum.pointer[e.offset + i])
            }
        }
        return nil
    }

    private func firstNonFinite(_ p: UnsafePointer<Float>, _ n: Int) -> Int? {
        for i in 0..<n where !p[i].isFinite { return i }
        return nil
    }

    /// Plans for the input shape, converts NCHW to CNHW and runs the graph; returns the CNHW
    /// logits `[classes][N]`. Training mode follows `context.training`.
    package func forward(_ x: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int) throws -> UnsafeMutablePointer<Float> {
        guard batch >= 1 else { throw ModelError.emptyBatch }
        guard channels == inputChannels else { throw ModelError.inputChannels(expected: inputChannels, got: channels) }
        let shape = ActivationShape(channels: channels, batch: batch, height: height, width: width)
        try plan(shape, training: context.training)
        context.timed(.other) { nchwToCnhw(x, input.pointer, n: batch, c: channels, plane: height * width) }
        cache.beginPass()
        return root(training: context.training).forward(input.pointer, context)
    }

    /// Plans every layer of the tree this mode runs for `shape`, unless already planned for it
    /// (and for the worker pool's current size, which the workspaces depend on).
    package func plan(_ shape: ActivationShape, training: Bool) throws {
        let participants = context.threading.threads
        if let p = planned, p.shape == shape, p.training == training, p.participants == participants { return }
        planned = nil
        let root = root(training: training)
        for block in reuseBlocks + inferenceBlocks { block.participants = participants }
        let out: ActivationShape
        do { out = try root.plan(input: shape, training: training) }
        catch let e as PlanError { throw ModelError.imageSize(height: shape.height, width: shape.width, problem: e) }
        guard out.height == 1, out.width == 1, out.channels == classes else {
            throw ModelError.outputMap(height: shape.height, width: shape.width, map: [out.height, out.width])
        }
        if !training { placeActivations(root) } else if placesGradients { placeGradients(root) } else {
            activations = FloatBuffer(count: 0); activationBytes = (0, 0); gradients = FloatBuffer(count: 0); gradientBytes = (0, 0)
        }
        if input.count != shape.count { input = FloatBuffer(count: shape.count) }
        if training && logitGradient.count != out.count { logitGradient = FloatBuffer(count: out.count) }
        planned = (shape, training, participants)
        if !training { tuneLayerThreads(root, batch: shape.batch) }
    }

    /// Leaf layers, except reused blocks: their tiles follow the thread count, and across thread
    /// counts docs/determinism.md promises them only to 1e-6, so they always run on all threads
    /// and the timing at plan time cannot make two runs differ.
    private static func mayRunAlone(_ layer: Layer) -> Bool { layer.children.isEmpty && !(layer is ReuseBlock) }

    /// Runs the leaf layers `choose` picks on one thread in the current inference plan, the
    /// others on all (what the timing at plan time sets; tests pick their own).
    package func runOnOneThread(_ choose: (Layer) -> Bool) {
        for s in inferenceSequences() { s.oneThread = s.layers.map { Self.mayRunAlone($0) && choose($0) } }
    }

    private func inferenceSequences() -> [SequenceLayer] {
        root(training: false).allLayers.compactMap { $0 as? SequenceLayer }
    }

    /// Sets each sequence's ``SequenceLayer/oneThread`` from a few passes of the planned input
    /// (whatever it holds: the kernels' speed does not depend on the values) with every layer on
    /// all threads and with every layer on one, alternating; per leaf layer the faster of the
    /// two best times wins.
    private func tuneLayerThreads(_ root: SequenceLayer, batch: Int) {
        runOnOneThread { _ in false }
        let passMACs = batch * root.summaries.reduce(0) { $0 + $1.totalMACs }
        guard tunesThreadsPerLayer, context.threading.threads > 1, passMACs <= Self.tunedPassMACs else { return }
        let leaves = inferenceSequences().flatMap { $0.layers.filter(Self.mayRunAlone) }
        let kept = context.profile, all = context.threading, profile = OpProfile()
        var best: [ObjectIdentifier: (all: Double, one: Double)] = [:]
        context.profile = profile
        for round in 0...3 {             // round 0 warms up
            for alone in [false, true] {
                profile.reset()
                if alone { context.threading = context.singleThread }
                cache.beginPass()
                _ = root.forward(input.pointer, context)
                context.threading = all
                guard round > 0 else { continue }
                for layer in leaves {
                    guard let t = profile.seconds(of: layer) else { continue }
                    var b = best[ObjectIdentifier(layer), default: (.infinity, .infinity)]
                    if alone { b.one = min(b.one, t) } else { b.all = min(b.all, t) }
                    best[ObjectIdentifier(layer)] = b
                }
            }
        }
        context.profile = kept
        runOnOneThread { layer in best[ObjectIdentifier(layer)].map { $0.one < $0.all } ?? false }
    }

    /// Places every output of the inference plan in one arena by liveness and binds the layers to it.
    private func placeActivations(_ root: SequenceLayer) {
        gradients = FloatBuffer(count: 0); gradientBytes = (0, 0)
        let trace = ActivationTrace()
        trace.useAtEnd(root.trace(nil, trace))          // the logits are read after the pass
        activationBytes = place(trace, in: &activations)
    }

    /// Training keeps every output for backward; the input gradients, each alive from its
    /// layer's backward to the backward of the layer before, share one arena.
    private func placeGradients(_ root: SequenceLayer) {
        activations = FloatBuffer(count: 0); activationBytes = (0, 0)
        let trace = ActivationTrace()
        _ = root.traceBackward(nil, trace)              // the logits' gradient is the network's own buffer
        gradientBytes = place(trace, in: &gradients)
    }

    private func place(_ trace: ActivationTrace, in arena: inout FloatBuffer) -> (arena: Int, separate: Int) {
        let (offsets, count) = trace.place()
        arena = FloatBuffer(count: count)
        for (request, offset) in zip(trace.requests, offsets) { request.bind(arena.pointer + offset) }
        return (count * MemoryLayout<Float>.size, trace.separateCount * MemoryLayout<Float>.size)
    }

    /// The planned buffer for d(loss)/d(logits), `[classes][N]`.
    func gradientOfLogits(count: Int) -> UnsafeMutablePointer<Float> {
        precondition(logitGradient.count == count, "logit gradient not planned")
        return logitGradient.pointer
    }

    func transposeLogits(_ cnhw: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, batch: Int) {
        let k = classes
        for c in 0..<k { for n in 0..<batch { output[n * k + c] = cnhw[c * batch + n] } }
    }
}
