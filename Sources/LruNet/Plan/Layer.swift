/// What a pass needs besides data: training or inference, threads, the
/// parameter cache and the random source for dropout. Passed explicitly;
/// the engine has no global mode.
package final class RunContext {
    package var training: Bool
    package var threading: Threading
    package let cache: ParameterCache
    package var rng: SplitMix64
    /// This step's seed, from which dropout draws each image's mask (``DropoutLayer``).
    package var stepSeed: UInt64 = 0
    /// The global batch index of this process's first image: dropout's masks depend on it, not
    /// on which process holds the image.
    package var firstImage = 0
    /// In training, BatchNorm statistics are pooled over this group (synchronised BatchNorm);
    /// nil: each process normalises with its own batch.
    package var pooledBatchNorm: ProcessGroup?
    /// When set, every op's time is added to it (see ``OpProfile``).
    package var profile: OpProfile?
    /// What a layer the plan runs on one thread gets instead of ``threading`` (see
    /// ``SequenceLayer/oneThread``).
    package private(set) lazy var singleThread = Threading(threads: 1)

    package init(training: Bool, threading: Threading, cache: ParameterCache, seed: UInt64 = 0) {
        self.training = training; self.threading = threading; self.cache = cache
        rng = SplitMix64(seed: seed)
    }
}

/// The kinds of work counted in the MAC (multiply-accumulate) report.
public enum OpKind: String, CaseIterable, Sendable {
    case conv = "conv (im2col)"
    case depthwise = "depthwise"
    case pointwise = "1x1 conv"
    case linear = "linear"
}

/// One row of `lrunet info`.
public struct LayerSummary: Sendable {
    /// The PyTorch module path.
    public let name: String
    public let op: String
    public let outputShape: ActivationShape
    /// Distinct trainable parameters this layer owns.
    public let parameters: Int
    /// Multiply-accumulates per image, by kind.
    public let macs: [OpKind: Int]
    public var totalMACs: Int { macs.values.reduce(0, +) }
}

/// A layer of the graph: planned once for an input shape, then run. Containers (a sequence,
/// a residual add, two branches joined by concat) are layers too.
///
/// `plan` checks the input shape, sizes the output and every scratch buffer;
/// `forward` and `backward` then only touch planned memory. Activations are
/// CNHW (see ``ActivationShape``). A layer keeps the input pointer it was
/// given so `backward` can use it; in training every layer's output buffer
/// stays intact until the backward pass.
package protocol Layer: AnyObject {
    /// The PyTorch module path, e.g. `features.0` or `stage2`.
    var name: String { get }
    func plan(input: ActivationShape, training: Bool) throws -> ActivationShape
    func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float>
    /// Returns the gradient with respect to the input, or nil when `needInputGradient` is false.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                  _ context: RunContext) -> UnsafeMutablePointer<Float>?
    /// Inference: records the output this plan writes and the values it reads in `trace`, and
    /// returns the value it outputs (its input, for a layer that passes it on).
    func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value
    /// Training: records the input gradient backward writes, reading `gradOutput` (and, for a
    /// container, what its children's backward reads), and returns it. Gradients live from the
    /// step that writes them to the step of the layer before, so they share one arena.
    func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value
    /// This layer's rows of `lrunet info` (a container lists its children's).
    var summaries: [LayerSummary] { get }
    /// The layers a container holds, in order (empty for a plain layer).
    var children: [Layer] { get }
    /// The ``OpProfile`` bucket the sequence times this layer's passes in; nil for a layer that
    /// times its own parts (containers, reused blocks).
    var profileBucket: OpTimer? { get }
}

extension Layer {
    package var children: [Layer] { [] }
    package var profileBucket: OpTimer? { .other }

    /// Every layer under this one, depth first, itself first.
    package var allLayers: [Layer] { [self] + children.flatMap(\.allLayers) }
}

/// Output and input-gradient buffers that most layers keep; sized on plan. In inference the
/// output's place is given by the network's activation arena, in training the input gradient's
/// by its gradient arena (``ActivationTrace``); a buffer nothing placed is allocated on first use.
struct LayerBuffers {
    var input = ActivationShape(channels: 0, batch: 0, height: 0, width: 0)
    var output = ActivationShape(channels: 0, batch: 0, height: 0, width: 0)
    private var outputSlot = ArenaSlot(), gradientSlot = ArenaSlot()
    var savedInput: UnsafeMutablePointer<Float>?

    /// Floats of output this plan writes (0: the layer passes its input on).
    var outputCount: Int { outputSlot.count }
    /// Floats of input gradient this plan writes (training).
    var gradientCount: Int { gradientSlot.count }

    /// `ownsOutput: false` for layers that pass their input through (Dropout in inference, a
    /// residual join whose add the body's last convolution does).
    mutating func resize(input: ActivationShape, output: ActivationShape, training: Bool, ownsOutput: Bool = true) {
        self.input = input; self.output = output
        // Training keeps every output for backward in the layer's own buffer; inference waits for its place.
        outputSlot.reset(count: ownsOutput ? output.count : 0, allocateNow: training)
        gradientSlot.reset(count: training ? input.count : 0)
    }

    /// Where the output goes.
    var out: UnsafeMutablePointer<Float> { mutating get { outputSlot.pointer } }
    /// Where backward writes the input gradient.
    var gradIn: UnsafeMutablePointer<Float> { mutating get { gradientSlot.pointer } }

    mutating func place(_ pointer: UnsafeMutablePointer<Float>) { outputSlot.place(pointer) }
    mutating func placeGradient(_ pointer: UnsafeMutablePointer<Float>) { gradientSlot.place(pointer) }
}

/// Errors raised while planning a graph for an input.
public enum PlanError: Error, CustomStringConvertible, Equatable {
    case channelMismatch(layer: String, expected: Int, got: Int)
    case tooSmall(layer: String, shape: ActivationShape)
    /// Two branches joined by concat produced maps of different sizes.
    case branchMismatch(layer: String, left: ActivationShape, right: ActivationShape)
    /// A layer that needs a 1x1 map (LinearLayer) got a larger one.
    case notFlat(layer: String, shape: ActivationShape)

    public var description: String {
        switch self {
        case let .channelMismatch(layer, expected, got):
            return "\(layer): expects \(expected) input channels, got \(got)"
        case let .tooSmall(layer, shape):
            return "\(layer): input \(shape) is too small for this layer"
        case let .branchMismatch(layer, left, right):
            return "\(layer): branches give \(left) and \(right), which cannot be concatenated"
        case let .notFlat(layer, shape):
            return "\(layer): needs a 1x1 map (pool first), got \(shape)"
        }
    }
}
