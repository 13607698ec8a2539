/// The networks the engine builds: the paper's LruNet and the four it is compared with.
public enum Architecture: String, CaseIterable, Codable, Sendable {
    case lrunet, mobilenet, mobilenetv2, shufflenet, shufflenetv2
}

extension ModelConfig {
    /// The network this configuration describes, in the public graph (Models/Architectures/).
    public var graph: Graph { arch.traits.graph(self) }
}

/// Everything that defines a network's shape, as the authors' constructors take it and as the
/// checkpoints' metadata records it (`arch`, `num_classes`, `width_mult`, `layer_reuse`,
/// `groups`, `in_channels`).
public struct ModelConfig: Equatable, Codable, Sendable {
    public var arch: Architecture
    public var numClasses: Int
    /// Width multiplier: 1 or 2 for LruNet; a decimal such as 0.25 for the baselines
    /// (ShuffleNetV2 takes 0.25, 0.5, 0.75, 1, 1.5 or 2).
    public var widthMult: Double
    /// LruNet's N, how many times each reused block is applied (1 for the others).
    public var layerReuse: Int
    /// ShuffleNet's group count (3 or 8); 1 for the others.
    public var groups: Int
    public var inChannels: Int
    /// Dropout before the classifier: LruNet's 0.5, the MobileNets' 0.2, none in the ShuffleNets.
    public var dropout: Float

    public init(arch: Architecture = .lrunet, numClasses: Int = 10, widthMult: Double = 1, layerReuse: Int = 1,
                groups: Int? = nil, inChannels: Int = 3, dropout: Float? = nil) {
        self.arch = arch; self.numClasses = numClasses; self.widthMult = widthMult
        self.layerReuse = arch == .lrunet ? layerReuse : 1
        self.groups = groups ?? (arch == .shufflenet ? 3 : 1)
        self.inChannels = inChannels
        self.dropout = dropout ?? Self.defaultDropout(arch)
    }

    /// LruNet with N reuses, the authors' default width 1.
    public static func lrunet(numClasses: Int = 10, widthMult: Double = 1, layerReuse: Int, inChannels: Int = 3,
                              dropout: Float = 0.5) -> ModelConfig {
        ModelConfig(arch: .lrunet, numClasses: numClasses, widthMult: widthMult, layerReuse: layerReuse, inChannels: inChannels,
                    dropout: dropout)
    }

    static func defaultDropout(_ arch: Architecture) -> Float { arch.traits.defaultDropout }

    /// `int(x * width_mult)` as the authors' Python computes it (truncated toward zero).
    func scaled(_ x: Int) -> Int { Int(Double(x) * widthMult) }

    /// Checks the values the architecture can be built with.
    public func validate() throws {
        func bad(_ field: String, _ value: CustomStringConvertible, _ allowed: String) -> ModelError {
            .invalidConfig(field: field, value: "\(value)", allowed: allowed)
        }
        guard (1...100_000).contains(numClasses) else { throw bad("num_classes", numClasses, "1...100000") }
        guard (1...64).contains(inChannels) else { throw bad("in_channels", inChannels, "1...64") }
        guard dropout >= 0 && dropout < 1 else { throw bad("dropout", dropout, "[0, 1)") }
        guard widthMult.isFinite && widthMult > 0 && widthMult <= 4 else { throw bad("width_mult", widthMult, "(0, 4]") }
        if let (field, value, allowed) = arch.traits.problem(self) { throw bad(field, value, allowed) }
    }

    /// Reads the safetensors metadata keys: `arch`, `num_classes`, `width_mult`, `in_channels`,
    /// and `layer_reuse` (LruNet) or `groups` (ShuffleNet).
    public init(metadata: [String: String]) throws {
        guard let raw = metadata["arch"] else { throw ModelError.missingMetadata(key: "arch") }
        guard let arch = Architecture(rawValue: raw) else { throw ModelError.unsupportedArchitecture(raw) }
        func value<T>(_ key: String, _ parse: (String) -> T?, default fallback: T? = nil) throws -> T {
            guard let s = metadata[key] else {
                if let fallback { return fallback }
                throw ModelError.missingMetadata(key: key)
            }
            guard let v = parse(s.trimmingCharacters(in: .whitespaces)) else { throw ModelError.badMetadata(key: key, value: s) }
            return v
        }
        func whole(_ s: String) -> Int? { Int(s) ?? Double(s).flatMap { $0 == $0.rounded() && abs($0) < 1e9 ? Int($0) : nil } }
        self.init(arch: arch, numClasses: try value("num_classes", whole), widthMult: try value("width_mult", { Double($0) }),
                  layerReuse: arch == .lrunet ? try value("layer_reuse", whole) : 1,
                  groups: arch == .shufflenet ? try value("groups", whole, default: 3) : nil,
                  inChannels: try value("in_channels", whole))
        try validate()
    }

    /// `width_mult` as the checkpoints spell it: "1", "2", "0.25", "0.4".
    public var widthText: String {
        widthMult == widthMult.rounded() ? String(Int(widthMult)) : String(widthMult)
    }

    /// The metadata written beside the weights, in the checkpoints' spelling.
    public var metadata: [String: String] {
        var m = ["arch": arch.rawValue, "num_classes": "\(numClasses)", "width_mult": widthText, "in_channels": "\(inChannels)"]
        if arch == .lrunet { m["layer_reuse"] = "\(layerReuse)" }
        if arch == .shufflenet { m["groups"] = "\(groups)" }
        return m
    }

    /// "lrunet N=10 width x1", "mobilenetv2 width x0.25", "shufflenet g3 width x0.5".
    public var summary: String { arch.traits.summary(self) }
}

import Foundation
