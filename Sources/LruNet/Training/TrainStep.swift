/// The outcome of one optimisation step.
public struct StepResult: Sendable {
    /// Mean cross-entropy over the batch.
    public let loss: Double
    /// Correct top-1 predictions in the batch (from the training-mode forward pass).
    public let correct: Int
}

extension LruNet {
    /// One SGD step on a batch: training-mode forward (batch statistics, dropout),
    /// cross-entropy, backward through every layer, then the optimiser update.
    ///
    /// - Parameters:
    ///   - images: NCHW float32 `[batch, channels, height, width]`.
    ///   - labels: `batch` class indices in `0..<num_classes`.
    ///   - seed: dropout masks for this step are drawn from this seed, so a step is reproducible.
    public func trainStep(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                          channels: Int, height: Int, width: Int,
                          optimizer: SGD, learningRate: Float, seed: UInt64) throws -> StepResult {
        for i in 0..<batch where labels[i] < 0 || Int(labels[i]) >= config.numClasses {
            throw ModelError.inputShape("label \(labels[i]) at \(i) is not a class 0..<\(config.numClasses)")
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
        graph.backward(grad, context)
        context.timed(.other) { optimizer.step(parameters, learningRate: learningRate) }
        return StepResult(loss: loss, correct: correct)
    }

    /// Computes the loss and fills every parameter gradient without updating anything
    /// (for gradient checks and custom optimisers). Runs in training mode.
    public func lossAndGradients(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                 channels: Int, height: Int, width: Int, seed: UInt64 = 0) throws -> Double {
        context.training = true
        context.rng = SplitMix64(seed: seed)
        defer { context.training = false }
        let logits = try forward(images, batch: batch, channels: channels, height: height, width: width)
        let grad = gradientOfLogits(count: config.numClasses * batch)
        let (loss, _) = softmaxCrossEntropy(logits: logits, labels: labels, gradient: grad,
                                            classes: config.numClasses, batch: batch)
        parameters.gradients.zero()
        graph.backward(grad, context)
        return loss
    }
}
