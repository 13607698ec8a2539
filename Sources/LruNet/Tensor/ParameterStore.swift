/// What a stored tensor is, which decides how it is initialised and whether
/// the optimiser touches it.
public enum ParameterRole: String, Sendable {
    case convWeight, convBias, linearWeight, linearBias, bnWeight, bnBias, runningMean, runningVar

    /// Parameters get gradients; running statistics are buffers.
    public var isTrainable: Bool {
        switch self {
        case .convWeight, .convBias, .linearWeight, .linearBias, .bnWeight, .bnBias: return true
        case .runningMean, .runningVar: return false
        }
    }
    /// Convolution weights and biases: what the cost report's "conv weight bytes" counts.
    public var isConv: Bool { self == .convWeight || self == .convBias }
}

/// How fresh weights are drawn, as the authors' model files do it.
public enum InitScheme: Sendable {
    /// LruNet and MobileNetV2: conv weights normal(0, sqrt(2 / fan_out)) (Kaiming, fan-out);
    /// linear weights normal(0, 0.01) with zero bias (MobileNetV2's).
    case kaimingFanOut
    /// PyTorch's defaults (MobileNet, ShuffleNet, ShuffleNetV2): weights and biases uniform in
    /// +-1/sqrt(fan_in) (`kaiming_uniform_(a=sqrt(5))`).
    case pytorchDefault
}

/// A handle to one tensor in a ``ParameterStore``.
public struct ParameterRef: Hashable, Sendable {
    public let index: Int
}

/// One named tensor in the arena: a view `(offset, count)` into one buffer.
public struct ParameterEntry: Sendable {
    /// PyTorch state-dict key, e.g. `stage3.pw_bn_list.7.running_var`.
    public let name: String
    public let shape: [Int]
    public let role: ParameterRole
    /// PyTorch's `fan_out` for conv weights (out channels x kernel area), for Kaiming init.
    public let fanOut: Int
    public let fanIn: Int
    public internal(set) var offset: Int = 0
    public var count: Int { shape.reduce(1, *) }
}

/// The parameter arena: every weight and running statistic of a model lives
/// in one contiguous buffer, with gradients and optimiser state in buffers of
/// the same layout. Trainable tensors come first, so SGD, weight decay and
/// gradient zeroing are flat loops over `0..<trainableCount`.
///
/// Layers declare their tensors while the model is built, then the store is
/// sealed and memory is allocated once.
public final class ParameterStore {
    public private(set) var entries: [ParameterEntry] = []
    private var byName: [String: Int] = [:]
    package private(set) var values = FloatBuffer(count: 0)
    package private(set) var gradients = FloatBuffer(count: 0)
    package private(set) var momentum = FloatBuffer(count: 0)
    public private(set) var trainableCount = 0
    public private(set) var isSealed = false

    package init() {}

    /// Every declaration in order, a repeated name (a weight shared by the applications of a
    /// ``Reuse``) once per layer that declares it: the graph compiler checks each repeat.
    package private(set) var declarations: [(index: Int, shape: [Int])] = []

    /// Declares a tensor, or returns the one already declared under `name` (shared); call before ``seal()``.
    @discardableResult
    func declare(_ name: String, shape: [Int], role: ParameterRole, fanIn: Int = 0, fanOut: Int = 0) -> ParameterRef {
        precondition(!isSealed, "ParameterStore: declare \(name) after seal")
        let index = byName[name] ?? entries.count
        if index == entries.count {
            byName[name] = index
            entries.append(ParameterEntry(name: name, shape: shape, role: role, fanOut: fanOut, fanIn: fanIn))
        }
        declarations.append((index, shape))
        return ParameterRef(index: index)
    }

    /// Trainable values of a network with one copy of each tensor per layer that uses it:
    /// what reuse saves against unrolling.
    public var unrolledTrainableCount: Int {
        declarations.reduce(0) { $0 + (entries[$1.index].role.isTrainable ? entries[$1.index].count : 0) }
    }

    /// Lays out the arena (trainable tensors first) and allocates it, set to
    /// PyTorch's defaults for BatchNorm (weight 1, bias 0, mean 0, var 1).
    package func seal() {
        precondition(!isSealed)
        var offset = 0
        for pass in [true, false] {
            for i in entries.indices where entries[i].role.isTrainable == pass {
                entries[i].offset = offset
                offset += entries[i].count
            }
            if pass { trainableCount = offset }
        }
        values = FloatBuffer(count: offset)
        gradients = FloatBuffer(count: trainableCount)
        momentum = FloatBuffer(count: trainableCount)
        isSealed = true
        for e in entries where e.role == .bnWeight || e.role == .runningVar {
            (values.pointer + e.offset).update(repeating: 1, count: e.count)
        }
    }

    public var totalCount: Int { values.count }

    public func ref(named name: String) -> ParameterRef? { byName[name].map(ParameterRef.init) }
    public func entry(_ ref: ParameterRef) -> ParameterEntry { entries[ref.index] }

    /// The live values of a tensor. Stable for the life of the store.
    package func pointer(_ ref: ParameterRef) -> UnsafeMutablePointer<Float> {
        values.pointer + entries[ref.index].offset
    }

    /// The gradient of a trainable tensor (same layout as the values).
    package func gradient(_ ref: ParameterRef) -> UnsafeMutablePointer<Float> {
        precondition(entries[ref.index].role.isTrainable, "\(entries[ref.index].name) has no gradient")
        return gradients.pointer + entries[ref.index].offset
    }

    /// A copy of one tensor's values.
    public func values(of name: String) -> [Float]? {
        guard let r = ref(named: name) else { return nil }
        return Array(UnsafeBufferPointer(start: pointer(r), count: entries[r.index].count))
    }

    /// Replaces one tensor's values.
    /// - Throws: ``ModelError/missingTensor(name:)`` or ``ModelError/shapeMismatch(name:expected:got:)``.
    public func setValues(of name: String, to tensor: Tensor) throws {
        guard let r = ref(named: name) else { throw ModelError.missingTensor(name: name) }
        guard tensor.shape == entries[r.index].shape else {
            throw ModelError.shapeMismatch(name: name, expected: entries[r.index].shape, got: tensor.shape)
        }
        pointer(r).update(from: tensor.data, count: tensor.count)
    }

    /// The gradient of a trainable tensor after ``Network/lossAndGradients(images:labels:seed:)``.
    public func gradient(of name: String) -> [Float]? {
        guard let r = ref(named: name), entries[r.index].role.isTrainable else { return nil }
        return Array(UnsafeBufferPointer(start: gradient(r), count: entries[r.index].count))
    }

    /// Fresh values for every tensor (BatchNorm 1/0 and its running statistics reset),
    /// gradients and momentum zeroed.
    package func initialise(seed: UInt64, scheme: InitScheme = .kaimingFanOut) {
        var rng = SplitMix64(seed: seed)
        func uniform(_ p: UnsafeMutablePointer<Float>, _ n: Int, fanIn: Int) {
            let bound = Float(1.0 / Double(max(fanIn, 1)).squareRoot())
            for i in 0..<n { p[i] = bound * (2 * rng.nextUniform() - 1) }
        }
        for e in entries {
            let p = values.pointer + e.offset
            switch (e.role, scheme) {
            case (.convWeight, .kaimingFanOut):
                let std = Float((2.0 / Double(max(e.fanOut, 1))).squareRoot())
                for i in 0..<e.count { p[i] = std * rng.nextNormal() }
            case (.linearWeight, .kaimingFanOut): for i in 0..<e.count { p[i] = 0.01 * rng.nextNormal() }
            case (.linearBias, .kaimingFanOut): p.update(repeating: 0, count: e.count)
            case (.convWeight, .pytorchDefault), (.linearWeight, .pytorchDefault), (.convBias, _), (.linearBias, .pytorchDefault):
                uniform(p, e.count, fanIn: e.fanIn)
            case (.bnWeight, _), (.runningVar, _): p.update(repeating: 1, count: e.count)
            case (.bnBias, _), (.runningMean, _): p.update(repeating: 0, count: e.count)
            }
        }
        gradients.zero()
        momentum.zero()
    }
}
