import Foundation

/// What a network costs per forward pass, and what reuse saves: parameters
/// held, parameter bytes read, and multiply-accumulates per image.
///
/// The fetched/requested byte counts are measured: they are the parameter
/// cache's counters after a real forward pass.
public struct CostReport: Sendable {
    /// The network's summary ("lrunet N=10 width x1", or a custom network's name).
    public let network: String
    /// Distinct trainable parameters (what PyTorch's `numel` sum reports).
    public let parameters: Int
    /// Trainable parameters of an unrolled network with a separate conv copy per application.
    public let unrolledParameters: Int
    /// Conv weights and biases, counted once.
    public let convParameters: Int
    /// Conv weight bytes read in one forward pass with the cache, and what an unrolled network reads.
    public let convBytesFetched: Int, convBytesUnrolled: Int
    /// The same for every tensor (conv, BatchNorm parameters and running statistics).
    public let allBytesFetched: Int, allBytesUnrolled: Int
    /// Multiply-accumulates per image, by kind.
    public let macs: [OpKind: Int]
    public var totalMACs: Int { macs.values.reduce(0, +) }

    /// The MAC saving factor on conv weights: unrolled bytes / fetched bytes.
    public var convFetchSaving: Double { Double(convBytesUnrolled) / Double(max(convBytesFetched, 1)) }

    /// A human-readable block, as `lrunet eval` and `lrunet info` print it.
    public var text: String {
        func mb(_ b: Int) -> String { String(format: "%.2f MB", Double(b) / 1e6) }
        func m(_ x: Int) -> String { String(format: "%.2f M", Double(x) / 1e6) }
        var lines = [
            "\(network): parameters \(parameters.grouped) (unrolled \(unrolledParameters.grouped)), conv parameters \(convParameters.grouped)",
            "conv weight bytes per forward: \(mb(convBytesFetched)) fetched once vs \(mb(convBytesUnrolled)) unrolled (\(String(format: "%.2fx", convFetchSaving)) less)",
            "all parameter bytes per forward: \(mb(allBytesFetched)) fetched vs \(mb(allBytesUnrolled)) requested",
            "MACs per image: \(m(totalMACs))",
        ]
        for k in OpKind.allCases where (macs[k] ?? 0) > 0 {
            lines.append("  \(k.rawValue): \(m(macs[k]!))")
        }
        return lines.joined(separator: "\n")
    }
}

extension Int {
    /// 182090 -> "182,090".
    package var grouped: String {
        let s = String(abs(self))
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return self < 0 ? "-" + out : out
    }
}

/// What a plan holds in one arena by liveness at one batch size: inference's activations, or
/// training's input gradients.
public struct ActivationMemory: Sendable {
    /// Bytes of the arena the values are placed in, by liveness (the peak of what is alive).
    public let arenaBytes: Int
    /// Bytes the same values take as separate buffers (what a plan without the arena holds).
    public let separateBytes: Int
    /// Images of one pass: inference runs a large batch in chunks (``Network/inferenceChunk``),
    /// training the whole batch.
    public let imagesPerPass: Int
}

extension Network {
    /// Plans inference for `batch` images of `height x width` and reports its activation memory:
    /// one pass's, over a chunk of the batch where inference runs it in chunks.
    public func activationMemory(batch: Int, height: Int, width: Int) throws -> ActivationMemory {
        guard batch >= 1 else { throw ModelError.emptyBatch }
        let shape = ActivationShape(channels: inputChannels, batch: batch, height: height, width: width)
        let images = try imagesPerPass(shape)
        try plan(ActivationShape(channels: inputChannels, batch: images, height: height, width: width), training: false)
        return ActivationMemory(arenaBytes: activationBytes.arena, separateBytes: activationBytes.separate, imagesPerPass: images)
    }

    /// Plans training for `batch` images of `height x width` and reports its input-gradient
    /// memory. (Training keeps every output for backward besides; they are not counted here.)
    public func gradientMemory(batch: Int, height: Int, width: Int) throws -> ActivationMemory {
        guard batch >= 1 else { throw ModelError.emptyBatch }
        try plan(ActivationShape(channels: inputChannels, batch: batch, height: height, width: width), training: true)
        return ActivationMemory(arenaBytes: gradientBytes.arena, separateBytes: gradientBytes.separate, imagesPerPass: batch)
    }

    /// Per-layer rows for `lrunet info` (every layer of the description, unfused), planned for
    /// one image of `height x width`.
    public func layerSummaries(height: Int, width: Int) throws -> [LayerSummary] {
        let fuses = fusesLayers
        fusesLayers = false
        defer { fusesLayers = fuses }
        try plan(ActivationShape(channels: inputChannels, batch: 1, height: height, width: width), training: false)
        return graph.summaries
    }

    /// Runs one forward pass on a blank image and reports the costs the parameter cache counted.
    public func costReport(height: Int, width: Int) throws -> CostReport {
        let wasTraining = context.training
        context.training = false
        defer { context.training = wasTraining }
        let zeros = [Float](repeating: 0, count: inputChannels * height * width)
        _ = try zeros.withUnsafeBufferPointer {
            try forward($0.baseAddress!, batch: 1, channels: inputChannels, height: height, width: width)
        }
        var macs: [OpKind: Int] = [:]
        for s in try layerSummaries(height: height, width: width) { for (k, v) in s.macs { macs[k, default: 0] += v } }
        let trainable = parameters.entries.filter { $0.role.isTrainable }
        // A reused block declares its shared convs once; the general operators once per application.
        let extraCopies = reuseBlocks.reduce(0) { $0 + ($1.iterations - 1) * $1.sharedConvParameters }
        return CostReport(network: summary,
                          parameters: trainable.reduce(0) { $0 + $1.count },
                          unrolledParameters: parameters.unrolledTrainableCount + extraCopies,
                          convParameters: trainable.filter { $0.role.isConv }.reduce(0) { $0 + $1.count },
                          convBytesFetched: cache.conv.fetchedBytes, convBytesUnrolled: cache.conv.requestedBytes,
                          allBytesFetched: cache.all.fetchedBytes, allBytesUnrolled: cache.all.requestedBytes,
                          macs: macs)
    }
}
