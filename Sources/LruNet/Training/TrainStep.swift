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
        for (i, label) in labels.enumerated() where label < 0 || label >= config.numClasses {
            throw ModelError.label(index: i, value: label, classes: config.numClasses)
        }
        return labels.map { Int32($0) }
    }

    /// ``trainStep(images:labels:optimizer:learningRate:seed:)`` on raw memory: the trainer's
    /// batches, which it fills in place.
    package func trainStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                           channels: Int, height: Int, width: Int,
                           optimizer: SGD, learningRate: Float, seed: UInt64) throws -> StepResult {
        for i in 0..<batch where labels[i] < 0 || Int(labels[i]) >= config.numClasses {
            throw ModelError.label(index: i, value: Int(labels[i]), classes: config.numClasses)
        }
        context.training = true
        context.rng = SplitMix64(seed: seed)
        defer { context.training = false }
        let logits = try forward(images, batch: batch, channels: channels, height: height, width: width)
        let grad = gradientOfLogits(count: config.numClasses * batch)
        let (loss, correct) = context.timed(.other) {
            softmaxCrossEntropy(logits: logits, labels: labels, gradient: grad, classes: config.numClasses, batch: batch)
        }
        context.timed(.other) { parameters.gradients.zero() }
        _ = graph.backward(grad, needInputGradient: false, context)
        context.timed(.other) { optimizer.step(parameters, learningRate: learningRate) }
        return StepResult(loss: loss, correct: correct)
    }

    package func lossAndGradients(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                  channels: Int, height: Int, width: Int, seed: UInt64 = 0) throws -> Double {
        context.training = true
        context.rng = SplitMix64(seed: seed)
        defer { context.training = false }
        let logits = try forward(images, batch: batch, channels: channels, height: height, width: width)
        let grad = gradientOfLogits(count: config.numClasses * batch)
        let (loss, _) = softmaxCrossEntropy(logits: logits, labels: labels, gradient: grad,
                                            classes: config.numClasses, batch: batch)
        parameters.gradients.zero()
        _ = graph.backward(grad, needInputGradient: false, context)
        return loss
    }
}
