/// The outcome of one optimisation step.
public struct StepResult: Sendable {
    /// Mean cross-entropy over the batch.
    public let loss: Double
    /// Correct top-1 predictions in the batch (from the training-mode forward pass).
    public let correct: Int
}

extension Network {
    /// One SGD step on a batch: training-mode forward (batch statistics, dropout),
    /// cross-entropy, backward through every layer, then the optimiser update.
    ///
    /// - Parameters:
    ///   - images: NCHW float32 `[batch, channels, height, width]`.
    ///   - labels: `batch` class indices in `0..<num_classes`.
    ///   - optimizer: the update rule (the authors': SGD, momentum 0.9, weight decay 5e-4).
    ///   - learningRate: this step's rate.
    ///   - seed: dropout masks for this step are drawn from this seed, so a step is reproducible.
    /// - Throws: ``ModelError`` for a bad shape or label; the parameters are unchanged then.
    public func trainStep(images: Tensor, labels: [Int], optimizer: SGD, learningRate: Float, seed: UInt64) throws -> StepResult {
        let (n, c, h, w) = try checkImages(images)
        let l = try checkLabels(labels, batch: n)
        return try images.data.withUnsafeBufferPointer { x in
            try l.withUnsafeBufferPointer { y in
                try trainStep(images: x.baseAddress!, labels: y.baseAddress!, batch: n, channels: c, height: h, width: w,
                              optimizer: optimizer, learningRate: learningRate, seed: seed)
            }
        }
    }

    /// The loss of a batch and every parameter's gradient (``ParameterStore/gradient(of:)``),
    /// without updating anything: for gradient checks and optimisers of your own. Runs in
    /// training mode.
    public func lossAndGradients(images: Tensor, labels: [Int], seed: UInt64 = 0) throws -> Double {
        let (n, c, h, w) = try checkImages(images)
        let l = try checkLabels(labels, batch: n)
        return try images.data.withUnsafeBufferPointer { x in
            try l.withUnsafeBufferPointer { y in
                try lossAndGradients(images: x.baseAddress!, labels: y.baseAddress!, batch: n, channels: c, height: h, width: w, seed: seed)
            }
        }
    }

    func checkLabels(_ labels: [Int], batch: Int) throws -> [Int32] {
        guard labels.count == batch else { throw ModelError.labelCount(expected: batch, got: labels.count) }
        for (i, label) in labels.enumerated() where label < 0 || label >= classes {
            throw ModelError.label(index: i, value: label, classes: classes)
        }
        return labels.map { Int32($0) }
    }

    /// ``trainStep(images:labels:optimizer:learningRate:seed:)`` on raw memory: the trainer's
    /// batches, which it fills in place. In a data-parallel run this process holds images
    /// `share.firstImage ..< share.firstImage + batch` of the step's global batch; the gradients
    /// are summed over `share.group` (one call over the whole gradient arena) before the update.
    package func trainStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                           channels: Int, height: Int, width: Int,
                           optimizer: SGD, learningRate: Float, seed: UInt64, share: BatchShare? = nil) throws -> StepResult {
        for i in 0..<batch where labels[i] < 0 || Int(labels[i]) >= classes {
            throw ModelError.label(index: i, value: Int(labels[i]), classes: classes)
        }
        return try withFlushedDenormals {
            let (loss, correct) = try gradients(images: images, labels: labels, batch: batch, channels: channels, height: height,
                                                width: width, seed: seed, share: share)
            if let share, share.group.isDistributed {
                context.timed(.other) { share.group.sum(parameters.gradients.pointer, count: parameters.gradients.count, for: .gradients) }
            }
            context.timed(.other) { optimizer.step(parameters, learningRate: learningRate) }
            return StepResult(loss: loss, correct: correct)
        }
    }

    /// Training-mode forward, loss and backward: every gradient of this process's images.
    private func gradients(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, channels: Int, height: Int,
                           width: Int, seed: UInt64, share: BatchShare?) throws -> (loss: Double, correct: Int) {
        context.training = true
        context.rng = SplitMix64(seed: seed)
        context.stepSeed = seed
        context.firstImage = share?.firstImage ?? 0
        context.pooledBatchNorm = share.flatMap { $0.synchronisedBatchNorm && $0.group.isDistributed ? $0.group : nil }
        defer { context.training = false; context.pooledBatchNorm = nil }
        let logits = try forward(images, batch: batch, channels: channels, height: height, width: width)
        let grad = gradientOfLogits(count: classes * batch)
        let result = context.timed(.other) {
            softmaxCrossEntropy(logits: logits, labels: labels, gradient: grad, classes: classes, batch: batch,
                                meanOver: share?.globalBatch ?? batch)
        }
        context.timed(.other) { parameters.gradients.zero() }
        _ = graph.backward(grad, needInputGradient: false, context)
        return result
    }

    package func lossAndGradients(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                  channels: Int, height: Int, width: Int, seed: UInt64 = 0) throws -> Double {
        try withFlushedDenormals {
            try gradients(images: images, labels: labels, batch: batch, channels: channels, height: height, width: width,
                          seed: seed, share: nil).loss
        }
    }
}

/// This process's part of a data-parallel step.
package struct BatchShare {
    package let group: ProcessGroup
    /// Where this process's images start in the step's global batch.
    package let firstImage: Int
    package let globalBatch: Int
    /// Pool BatchNorm statistics over the group (otherwise each process uses its own batch's).
    package let synchronisedBatchNorm: Bool
}
