import Foundation

/// Mean softmax cross-entropy over a batch, PyTorch's `CrossEntropyLoss()`.
///
/// logits, gradient: `[K][N]` (the engine's channel-major layout of `[N, K]`).
/// Writes d(loss)/d(logits) and returns the loss and the number of correct
/// top-1 predictions. Uses log-sum-exp with the row maximum subtracted, so
/// large logits do not overflow. In a data-parallel step the gradient is that of the mean over
/// the global batch (`meanOver` images), so the processes' gradients add up to one process's.
func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, gradient: UnsafeMutablePointer<Float>,
                         classes k: Int, batch n: Int, meanOver: Int? = nil) -> (loss: Double, correct: Int) {
    var total: Double = 0
    var correct = 0
    let inv = 1 / Float(meanOver ?? n)
    for i in 0..<n {
        var best = 0
        var m = logits[i]
        for c in 1..<k where logits[c * n + i] > m { m = logits[c * n + i]; best = c }
        var sum: Double = 0
        for c in 0..<k { sum += exp(Double(logits[c * n + i] - m)) }
        let label = Int(labels[i])
        total += log(sum) - Double(logits[label * n + i] - m)
        if best == label { correct += 1 }
        for c in 0..<k {
            let p = Float(exp(Double(logits[c * n + i] - m)) / sum)
            gradient[c * n + i] = (p - (c == label ? 1 : 0)) * inv
        }
    }
    return (total / Double(n), correct)
}
