/// Whole training recipes, one name each (`lrunet train --recipe`, `lrunet study`).
public enum Recipe: String, CaseIterable, Codable, Sendable {
    /// The authors' `main.py`: `RandomCrop(32, padding=4)` (Fashion-MNIST's 28x28 images padded
    /// and trained at 32, tested at 28), `RandomRotation(10)` (nearest neighbour, zero fill),
    /// `RandomHorizontalFlip()`, `ToTensor()` without normalisation; SGD lr 0.1, momentum 0.9,
    /// weight decay 5e-4 on every parameter, no Nesterov; batch 256; dropout 0.5; the rate x0.1
    /// at 2/3 and 5/6 of the epochs (their 200 and 250 of 300, changed by hand).
    case authors
    /// The authors' recipe without augmentation: images as they are, everything else the same.
    case plain

    /// Sets every element of the recipe; leaves epochs, seed, limits and threads alone.
    public func apply(to o: inout TrainingOptions) {
        o.batchSize = 256; o.learningRate = 0.1; o.momentum = 0.9; o.weightDecay = 5e-4; o.nesterov = false
        o.schedule = .step; o.warmupEpochs = 0
        switch self {
        case .authors: o.augment = true; o.rotationDegrees = 10; o.cropSize = 32
        case .plain: o.augment = false; o.rotationDegrees = 0; o.cropSize = nil
        }
    }

    /// LruNet's dropout in the recipe.
    public var dropout: Float { 0.5 }
}
