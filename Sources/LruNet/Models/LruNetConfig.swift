/// The hyper-parameters of an LruNet, as in the authors' constructor
/// `LruNet(num_classes, width_mult, layer_reuse, drop, init_ch)`.
public struct LruNetConfig: Equatable, Sendable, Codable {
    public var numClasses: Int
    /// 1 or 2 in the published checkpoints; the widths are `[64, 128, 256, 512, 256] * widthMult`.
    public var widthMult: Int
    /// N, the number of times each block is applied.
    public var layerReuse: Int
    public var inChannels: Int
    public var dropout: Float

    public init(numClasses: Int = 10, widthMult: Int = 1, layerReuse: Int = 8, inChannels: Int = 3, dropout: Float = 0.5) {
        self.numClasses = numClasses; self.widthMult = widthMult; self.layerReuse = layerReuse
        self.inChannels = inChannels; self.dropout = dropout
    }

    /// Stage widths `cfg` of the reference code.
    public var widths: [Int] { [64, 128, 256, 512, 256].map { $0 * widthMult } }

    /// Checks the values the architecture can be built with.
    public func validate() throws {
        func bad(_ why: String) -> ModelError { .invalidConfig(why) }
        guard numClasses >= 1 && numClasses <= 100_000 else { throw bad("num_classes \(numClasses) must be 1...100000") }
        guard widthMult == 1 || widthMult == 2 else { throw bad("width_mult \(widthMult) must be 1 or 2") }
        guard layerReuse >= 1 && layerReuse <= 64 else { throw bad("layer_reuse \(layerReuse) must be 1...64") }
        guard inChannels >= 1 && inChannels <= 64 else { throw bad("in_channels \(inChannels) must be 1...64") }
        guard dropout >= 0 && dropout < 1 else { throw bad("dropout \(dropout) must be in [0, 1)") }
    }

    /// Reads the safetensors metadata keys (`arch`, `num_classes`, `width_mult`, `layer_reuse`, `in_channels`).
    public init(metadata: [String: String]) throws {
        guard let arch = metadata["arch"] else { throw ModelError.missingMetadata("arch") }
        guard arch == "lrunet" else { throw ModelError.unsupportedArchitecture(arch) }
        func int(_ key: String) throws -> Int {
            guard let s = metadata[key] else { throw ModelError.missingMetadata(key) }
            guard let v = Int(s) ?? Double(s).flatMap({ $0 == $0.rounded() ? Int(exactly: $0) : nil }) else {
                throw ModelError.badMetadata(key: key, value: s)
            }
            return v
        }
        self.init(numClasses: try int("num_classes"), widthMult: try int("width_mult"),
                  layerReuse: try int("layer_reuse"), inChannels: try int("in_channels"))
        try validate()
    }

    /// The metadata written beside the weights, in the checkpoints' spelling.
    public var metadata: [String: String] {
        ["arch": "lrunet", "num_classes": "\(numClasses)", "width_mult": "\(widthMult)",
         "layer_reuse": "\(layerReuse)", "in_channels": "\(inChannels)"]
    }
}

/// Errors from building or loading a model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingMetadata(String)
    case badMetadata(key: String, value: String)
    case unsupportedArchitecture(String)
    case invalidConfig(String)
    case missingTensor(String)
    case unexpectedTensor(String)
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    case inputShape(String)

    public var description: String {
        switch self {
        case .missingMetadata(let k): return "checkpoint metadata has no '\(k)' key"
        case let .badMetadata(k, v): return "checkpoint metadata '\(k)' = '\(v)' is not a whole number"
        case .unsupportedArchitecture(let a): return "architecture '\(a)' is not supported (only 'lrunet')"
        case .invalidConfig(let why): return "invalid model configuration: \(why)"
        case .missingTensor(let n): return "checkpoint lacks tensor '\(n)' that the model needs"
        case .unexpectedTensor(let n): return "checkpoint has tensor '\(n)' that the model does not have"
        case let .shapeMismatch(n, e, g): return "tensor '\(n)' has shape \(g), the model expects \(e)"
        case .inputShape(let why): return "bad input: \(why)"
        }
    }
}
