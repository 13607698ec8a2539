/// Errors from building, loading or running a model. Each carries its fields: the metadata
/// key, the tensor name, the expected and actual shapes.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingMetadata(key: String)
    case badMetadata(key: String, value: String)
    case unsupportedArchitecture(String)
    case invalidConfig(field: String, value: String, allowed: String)
    case missingTensor(name: String)
    case unexpectedTensor(name: String)
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    /// An input that is not `[N, C, H, W]`.
    case inputRank(got: [Int])
    case inputChannels(expected: Int, got: Int)
    case emptyBatch
    /// The image size leaves a map the classifier cannot take (or one a layer cannot take).
    case imageSize(height: Int, width: Int, problem: PlanError)
    /// The network's output before the classifier view is not 1x1 for this image size.
    case outputMap(height: Int, width: Int, map: [Int])
    case labelCount(expected: Int, got: Int)
    case label(index: Int, value: Int, classes: Int)
    /// A value that is NaN or infinite where a finite one is needed (`what` names the tensor).
    case nonFinite(what: String, index: Int, value: Float)
    /// The network computed NaN or an infinity for an image (finite input, finite weights whose
    /// activations overflow float32).
    case nonFiniteOutput(image: Int, value: Float)

    public var description: String {
        switch self {
        case .missingMetadata(let key): return "checkpoint metadata has no \(quoted(key)) key"
        case let .badMetadata(key, value): return "checkpoint metadata \(quoted(key)) = \(quoted(value)) is not a valid value"
        case .unsupportedArchitecture(let a):
            return "architecture \(quoted(a)) is not supported (use \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .invalidConfig(field, value, allowed): return "invalid model configuration: \(field) = \(quoted(value, limit: 32)), must be \(allowed)"
        case .missingTensor(let n): return "checkpoint lacks tensor \(quoted(n, limit: 128)) that the model needs"
        case .unexpectedTensor(let n): return "checkpoint has tensor \(quoted(n, limit: 128)) that the model does not have"
        case let .shapeMismatch(n, e, g): return "tensor \(quoted(n, limit: 128)) has shape \(g), the model expects \(e)"
        case .inputRank(let got): return "bad input: expected [N, C, H, W], got \(got)"
        case let .inputChannels(e, g): return "bad input: the model takes \(e) input channel(s), got \(g)"
        case .emptyBatch: return "bad input: the batch is empty"
        case let .imageSize(h, w, problem): return "bad input: a \(h)x\(w) image does not fit the network (\(problem))"
        case let .outputMap(h, w, map):
            return "bad input: a \(h)x\(w) image leaves a \(map[0])x\(map[1]) map where the classifier needs 1x1; the checkpoints take 28x28 to 32x32 images"
        case let .labelCount(e, g): return "bad labels: \(g) labels for a batch of \(e)"
        case let .label(i, v, k): return "bad labels: label \(v) at \(i) is not a class 0..<\(k)"
        case let .nonFinite(what, i, v): return "\(what) has \(v) at index \(i); values must be finite"
        case let .nonFiniteOutput(i, v): return "the network's output for image \(i) is \(v): its activations overflow float32 (are the weights sane?)"
        }
    }
}
