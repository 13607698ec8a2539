/// A dense float32 tensor in row-major (C) order, the form data takes at the
/// public API: images are `[N, C, H, W]`, model outputs `[N, classes]`.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    /// - Precondition: `data.count` equals the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public var count: Int { data.count }

    /// The index of the largest value in each row of a 2-D tensor (first on ties, as PyTorch's `max`).
    public func argmaxRows() -> [Int] {
        precondition(shape.count == 2, "argmaxRows needs a 2-D tensor, got \(shape)")
        let cols = shape[1]
        return (0..<shape[0]).map { r in
            var best = 0
            for c in 1..<max(cols, 1) where data[r * cols + c] > data[r * cols + best] { best = c }
            return best
        }
    }
}
