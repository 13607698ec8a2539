/// 2-D convolution as PyTorch's `nn.Conv2d`: square kernel, stride, zero padding, groups
/// (dilation 1). Weight `[out, in/groups, k, k]` under `NAME.weight`, and `NAME.bias`. With
/// `groups == inputChannels` and no bias it runs as a depthwise convolution (channel
/// multiplier `outputChannels / inputChannels`).
public struct Conv2d: Module, Equatable, Sendable {
    public var inputChannels: Int, outputChannels: Int
    public var kernelSize: Int, stride: Int, padding: Int, groups: Int
    public var bias: Bool

    public init(_ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias: Bool = true) {
        self.inputChannels = inputChannels; self.outputChannels = outputChannels
        self.kernelSize = kernelSize; self.stride = stride; self.padding = padding; self.groups = groups; self.bias = bias
    }

    public var graph: Graph { Graph(.conv(self)) }

    var isDepthwise: Bool { groups == inputChannels && groups > 1 && !bias }
}

/// A fully connected layer on a 1x1 map (put ``GlobalAvgPool2d`` before it), as `nn.Linear`:
/// weight `[out, in]` and bias `[out]`.
public struct Linear: Module, Equatable, Sendable {
    public var inputFeatures: Int, outputFeatures: Int
    public var bias: Bool

    public init(_ inputFeatures: Int, _ outputFeatures: Int, bias: Bool = true) {
        self.inputFeatures = inputFeatures; self.outputFeatures = outputFeatures; self.bias = bias
    }

    public var graph: Graph { Graph(.linear(self)) }
}

/// BatchNorm over channels as `nn.BatchNorm2d` (eps 1e-5, momentum 0.1): `weight`, `bias`,
/// `running_mean`, `running_var`.
public struct BatchNorm2d: Module, Equatable, Sendable {
    public var channels: Int
    public init(_ channels: Int) { self.channels = channels }
    public var graph: Graph { Graph(.batchNorm(channels: channels)) }
}

/// The nonlinearities a layer or a join can apply.
public enum Activation: Equatable, Sendable {
    case none, relu, relu6

    var kind: ActivationKind {
        switch self {
        case .none: return .none
        case .relu: return .relu
        case .relu6: return .relu6
        }
    }
}

/// `max(x, 0)`.
public struct ReLU: Module, Sendable {
    public init() {}
    public var graph: Graph { Graph(.activation(.relu)) }
}

/// `min(max(x, 0), 6)`.
public struct ReLU6: Module, Sendable {
    public init() {}
    public var graph: Graph { Graph(.activation(.relu6)) }
}

/// Max or average pooling over each plane. Max pooling pads with -infinity; average pooling
/// counts the padding in its divisor (PyTorch's defaults).
public struct Pool: Equatable, Sendable {
    public enum Mode: Equatable, Sendable { case max, average }
    public var mode: Mode
    public var kernelSize: Int, stride: Int, padding: Int
}

/// `nn.MaxPool2d(kernelSize, stride, padding)`; the stride defaults to the kernel size.
public struct MaxPool2d: Module, Sendable {
    public var pool: Pool
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        pool = Pool(mode: .max, kernelSize: kernelSize, stride: stride ?? kernelSize, padding: padding)
    }
    public var graph: Graph { Graph(.pool(pool)) }
}

/// `nn.AvgPool2d(kernelSize, stride, padding)`; the stride defaults to the kernel size.
public struct AvgPool2d: Module, Sendable {
    public var pool: Pool
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        pool = Pool(mode: .average, kernelSize: kernelSize, stride: stride ?? kernelSize, padding: padding)
    }
    public var graph: Graph { Graph(.pool(pool)) }
}

/// The mean of each channel's plane: a 1x1 map (`nn.AdaptiveAvgPool2d(1)`).
public struct GlobalAvgPool2d: Module, Sendable {
    public init() {}
    public var graph: Graph { Graph(.globalAveragePool) }
}

/// In training, zeroes each value with probability `p` and scales the rest by `1/(1-p)`; the
/// identity in inference.
public struct Dropout: Module, Sendable {
    public var probability: Float
    public init(_ probability: Float) { self.probability = probability }
    public var graph: Graph { Graph(.dropout(probability)) }
}

/// A channel permutation: view the channels as `[groups][C/groups]`, transpose, flatten
/// (ShuffleNet's). `swapHalves` (2 groups only) swaps the halves first, as LruNet's block does:
/// `out[2k] = in[C/2 + k]`, `out[2k+1] = in[k]`.
public struct ChannelShuffle: Module, Equatable, Sendable {
    public var groups: Int
    public var swapHalves: Bool
    public init(groups: Int, swapHalves: Bool = false) { self.groups = groups; self.swapHalves = swapHalves }
    public var graph: Graph { Graph(.shuffle(self)) }
}

/// Passes its input on: the shortcut branch of a ``Concat``.
public struct Identity: Module, Sendable {
    public init() {}
    public var graph: Graph { Graph(.identity) }
}
