/// Everything the engine knows about one built-in architecture, in one place. Adding a sixth:
/// a case of ``Architecture``, its entry in ``Architecture/traits``, and its description in a
/// file of Models/Architectures/ (the import's name-based detection aside).
public struct ArchitectureTraits: Sendable {
    /// The name the paper uses.
    public let displayName: String
    /// Dropout before the classifier when the configuration does not say.
    public let defaultDropout: Float
    /// How the authors' code draws fresh weights.
    public let initialisation: InitScheme
    /// Its colour in charts (`lrunet compare`).
    public let colour: String
    /// The network a configuration describes, in the public graph.
    let graph: @Sendable (ModelConfig) -> Graph
    /// What the architecture itself requires of a configuration: the field and the values it
    /// allows when the configuration breaks it, else nil.
    let problem: @Sendable (ModelConfig) -> (field: String, value: String, allowed: String)?
    /// "lrunet N=10 width x1".
    let summary: @Sendable (ModelConfig) -> String
}

extension Architecture {
    public var traits: ArchitectureTraits {
        switch self {
        case .lrunet:
            return ArchitectureTraits(
                displayName: "LruNet", defaultDropout: 0.5, initialisation: .kaimingFanOut, colour: "#d62728",
                graph: { c in lruNet(classes: c.numClasses, width: Int(c.widthMult), reuse: c.layerReuse, inputChannels: c.inChannels, dropout: c.dropout).graph },
                problem: { c in
                    if c.widthMult != 1 && c.widthMult != 2 { return ("width_mult", c.widthText, "1 or 2 for lrunet") }
                    if !(1...64).contains(c.layerReuse) { return ("layer_reuse", "\(c.layerReuse)", "1...64") }
                    return nil
                },
                summary: { c in "lrunet N=\(c.layerReuse) width x\(c.widthText)" })
        case .mobilenet:
            return ArchitectureTraits(
                displayName: "MobileNet", defaultDropout: 0.2, initialisation: .pytorchDefault, colour: "#1f77b4",
                graph: { c in mobileNet(classes: c.numClasses, width: c.widthMult, inputChannels: c.inChannels, dropout: c.dropout).graph },
                problem: { c in c.scaled(16) >= 1 ? nil : ("width_mult", c.widthText, "at least 1/16 for mobilenet") },
                summary: { c in "mobilenet width x\(c.widthText)" })
        case .mobilenetv2:
            return ArchitectureTraits(
                displayName: "MobileNetV2", defaultDropout: 0.2, initialisation: .kaimingFanOut, colour: "#2ca02c",
                graph: { c in mobileNetV2(classes: c.numClasses, width: c.widthMult, inputChannels: c.inChannels, dropout: c.dropout).graph },
                problem: { c in c.scaled(16) >= 1 ? nil : ("width_mult", c.widthText, "at least 1/16 for mobilenetv2") },
                summary: { c in "mobilenetv2 width x\(c.widthText)" })
        case .shufflenet:
            return ArchitectureTraits(
                displayName: "ShuffleNet", defaultDropout: 0, initialisation: .pytorchDefault, colour: "#ff7f0e",
                graph: { c in shuffleNet(classes: c.numClasses, groups: c.groups, width: c.widthMult, inputChannels: c.inChannels).graph },
                problem: { c in
                    if c.groups != 3 && c.groups != 8 { return ("groups", "\(c.groups)", "3 or 8 for shufflenet") }
                    return ShuffleNetShape.problem(c).map {
                        ("width_mult", c.widthText, "a width whose channels \(c.groups) groups divide (this one gives \($0))")
                    }
                },
                summary: { c in "shufflenet g\(c.groups) width x\(c.widthText)" })
        case .shufflenetv2:
            return ArchitectureTraits(
                displayName: "ShuffleNetV2", defaultDropout: 0, initialisation: .pytorchDefault, colour: "#9467bd",
                graph: { c in shuffleNetV2(classes: c.numClasses, width: c.widthMult, inputChannels: c.inChannels).graph },
                problem: { c in shuffleNetV2Widths(c.widthMult) != nil ? nil : ("width_mult", c.widthText, "0.25, 0.5, 0.75, 1, 1.5 or 2 for shufflenetv2") },
                summary: { c in "shufflenetv2 width x\(c.widthText)" })
        }
    }

    /// The name the paper uses.
    public var displayName: String { traits.displayName }
}
