import Foundation

/// The outcome of evaluating a model on a labelled set.
public struct EvaluationResult: Sendable {
    public let correct: Int
    public let total: Int
    /// Wall-clock seconds of the forward passes.
    public let seconds: Double
    /// `[total, num_classes]` outputs when asked for.
    public let logits: [Float]?
    /// Mean cross-entropy of the outputs against the labels.
    public let loss: Double

    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
    public var imagesPerSecond: Double { seconds > 0 ? Double(total) / seconds : 0 }
}

extension Network {
    /// Classifies `data` in batches and counts correct top-1 predictions
    /// (first maximum wins, as PyTorch's `max`).
    /// - Parameters:
    ///   - data: the labelled images, with the model's channel count.
    ///   - batchSize: images per forward pass.
    ///   - limit: evaluate only the first `limit` images.
    ///   - keepLogits: return every output row.
    ///   - progress: called after each batch with (images done, total).
    public func evaluate(_ data: LabeledImages, batchSize: Int = 256, limit: Int? = nil, keepLogits: Bool = false,
                         progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        guard batchSize >= 1 else { throw ModelError.emptyBatch }
        guard data.channels == inputChannels else { throw ModelError.inputChannels(expected: inputChannels, got: data.channels) }
        guard data.numClasses <= classes else {
            throw ModelError.invalidConfig(field: "num_classes", value: "\(classes)",
                                           allowed: "at least the data set's \(data.numClasses) classes")
        }
        let total = min(limit ?? data.count, data.count)
        let k = classes
        var out = [Float](repeating: 0, count: batchSize * k)
        var all: [Float] = []
        if keepLogits { all.reserveCapacity(total * k) }
        var correct = 0
        var seconds = 0.0
        var lossSum = 0.0
        try data.images.withUnsafeBufferPointer { images in
            try out.withUnsafeMutableBufferPointer { o in
                var start = 0
                while start < total {
                    let n = min(batchSize, total - start)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try infer(images.baseAddress! + start * data.imageSize, batch: n, channels: data.channels,
                              height: data.height, width: data.width, into: o.baseAddress!)
                    seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    for i in 0..<n {
                        let row = o.baseAddress! + i * k
                        var best = 0
                        for c in 1..<k where row[c] > row[best] { best = c }
                        let label = Int(data.labels[start + i])
                        if best == label { correct += 1 }
                        var z = 0.0
                        for c in 0..<k { z += exp(Double(row[c] - row[best])) }
                        lossSum += log(z) - Double(row[label] - row[best])
                    }
                    if keepLogits { all.append(contentsOf: UnsafeBufferPointer(start: o.baseAddress!, count: n * k)) }
                    start += n
                    progress?(start, total)
                }
            }
        }
        return EvaluationResult(correct: correct, total: total, seconds: seconds, logits: keepLogits ? all : nil,
                                loss: total > 0 ? lossSum / Double(total) : 0)
    }
}
