/// Stochastic gradient descent with momentum and weight decay, exactly as
/// PyTorch's `optim.SGD` (dampening 0): `d = g + wd*p; v = mu*v + d;
/// p -= lr * (nesterov ? d + mu*v : v)`. Weight decay applies to every trainable
/// tensor, as in the authors' `main.py`.
///
/// Because the parameter arena keeps all trainable values, gradients and
/// momentum in one layout, a step is one flat loop.
public struct SGD: Sendable, Equatable {
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool

    /// The authors' settings: momentum 0.9, weight decay 5e-4.
    public init(momentum: Float = 0.9, weightDecay: Float = 5e-4, nesterov: Bool = false) {
        self.momentum = momentum; self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    public func step(_ store: ParameterStore, learningRate lr: Float) {
        let p = store.values.pointer, g = store.gradients.pointer, v = store.momentum.pointer
        let mu = momentum, wd = weightDecay
        for i in 0..<store.trainableCount {
            let d = g[i] + wd * p[i]
            v[i] = mu * v[i] + d
            p[i] -= lr * (nesterov ? d + mu * v[i] : v[i])
        }
    }
}
