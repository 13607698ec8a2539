import Foundation

/// What a user may state instead of letting the import infer it from the tensors.
public struct ImportOverrides: Sendable {
    public var arch: Architecture?
    public var widthMult: Double?
    public var layerReuse: Int?
    public var groups: Int?
    public var numClasses: Int?
    public var inChannels: Int?
    public var dataset: DatasetKind?

    public init(arch: Architecture? = nil, widthMult: Double? = nil, layerReuse: Int? = nil, groups: Int? = nil,
                numClasses: Int? = nil, inChannels: Int? = nil, dataset: DatasetKind? = nil) {
        self.arch = arch; self.widthMult = widthMult; self.layerReuse = layerReuse; self.groups = groups
        self.numClasses = numClasses; self.inChannels = inChannels; self.dataset = dataset
    }
}

/// A PyTorch checkpoint turned into this engine's form: PyTorch names (DataParallel's `module.`
/// dropped), the configuration its tensors fit, and the metadata a safetensors checkpoint carries.
public struct ImportedCheckpoint {
    public let config: ModelConfig
    public let dataset: DatasetKind
    /// `arch`, `num_classes`, `width_mult`, `in_channels`, `layer_reuse` or `groups`, `dataset`,
    /// and, when the file has them, `epoch`, `reported_test_accuracy`; `source` is the file name.
    public let metadata: [String: String]
    /// Where the file name disagrees with the tensors (the tensors win), one line each.
    public let notes: [String]
    public let tensors: [(name: String, tensor: Tensor)]

    /// The checkpoint in safetensors format, in memory.
    public func safetensors() throws -> Data {
        try SafeTensorsFile.encode(tensors: tensors.map { ($0.name, $0.tensor.shape, $0.tensor.data) }, metadata: metadata)
    }

    /// Writes the safetensors file atomically: a failed import never leaves a partial file.
    public func write(to path: String) throws { try FileBytes.writeAtomically(try safetensors(), to: path) }

    /// Infers the configuration from the tensors' names and shapes and checks that the network it
    /// describes declares exactly these tensors. `fileName` is only compared, never trusted.
    public init(_ checkpoint: TorchCheckpoint, fileName: String, overrides: ImportOverrides = ImportOverrides()) throws {
        var tensors: [(name: String, tensor: Tensor)] = []
        var seen = Set<String>()
        for (stored, tensor) in checkpoint.tensors where !stored.hasSuffix("num_batches_tracked") {
            let name = stored.hasPrefix("module.") ? String(stored.dropFirst(7)) : stored
            guard seen.insert(name).inserted else { throw ImportError.duplicate(name) }
            tensors.append((name, tensor))
        }
        let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor.shape) })
        let config = try Self.infer(shapes, overrides)
        let dataset = overrides.dataset ?? (config.inChannels == 1 ? .fashionMNIST : config.numClasses == 100 ? .cifar100 : .cifar10)

        var metadata = config.metadata
        metadata["dataset"] = dataset.rawValue
        metadata["source"] = (fileName as NSString).lastPathComponent
        if let epoch = checkpoint.epoch { metadata["epoch"] = "\(epoch)" }
        if let acc = checkpoint.accuracy { metadata["reported_test_accuracy"] = "\(acc)" }
        self.config = config
        self.dataset = dataset
        self.metadata = metadata
        self.tensors = tensors
        self.notes = Self.fileNameNotes(fileName, config: config, dataset: dataset)
    }

    // MARK: - Inference

    private static func infer(_ shapes: [String: [Int]], _ o: ImportOverrides) throws -> ModelConfig {
        func has(_ name: String) -> Bool { shapes[name] != nil }
        guard let arch = o.arch ?? (
            has("stage1.dw.weight") ? .lrunet :
            has("features.1.conv1.weight") ? .mobilenet :
            has("features.1.conv.0.weight") ? .mobilenetv2 :
            has("linear.weight") && has("conv2.weight") ? .shufflenetv2 :
            has("linear.weight") && has("layer1.0.conv3.weight") ? .shufflenet : nil)
        else { throw ImportError.unknownArchitecture(names: shapes.keys.sorted()) }

        // The stem's input channels, the classifier's outputs, and the stem's width.
        let stem: String, classifier: String
        switch arch {
        case .lrunet:
            stem = "features.0.weight"
            classifier = shapes.keys.filter { $0.hasPrefix("classifier.") && $0.hasSuffix(".weight") && shapes[$0]!.count == 4 }
                .max { Int($0.split(separator: ".")[1]) ?? 0 < Int($1.split(separator: ".")[1]) ?? 0 } ?? "classifier.4.weight"
        case .mobilenet, .mobilenetv2: stem = "features.0.0.weight"; classifier = "classifier.1.weight"
        case .shufflenet, .shufflenetv2: stem = "conv1.weight"; classifier = "linear.weight"
        }
        guard let stemShape = shapes[stem], stemShape.count == 4 else { throw ImportError.missing(stem, arch) }
        guard let classes = o.numClasses ?? shapes[classifier]?.first else { throw ImportError.missing(classifier, arch) }
        let inChannels = o.inChannels ?? stemShape[1]

        // Candidates, simplest first; the first whose declared tensors are exactly the file's wins.
        var candidates: [ModelConfig] = []
        func add(_ width: Double, reuse: Int = 1, groups: Int? = nil) {
            candidates.append(ModelConfig(arch: arch, numClasses: classes, widthMult: width, layerReuse: reuse, groups: groups, inChannels: inChannels))
        }
        switch arch {
        case .lrunet:
            let reuse = o.layerReuse ?? Set(shapes.keys.compactMap { name -> Int? in
                guard name.hasPrefix("stage1.dw_bn_list.") else { return nil }
                return Int(name.split(separator: ".")[2])
            }).count
            for w in o.widthMult.map({ [$0] }) ?? [1, 2] { add(w, reuse: max(reuse, 1)) }
        case .shufflenetv2:
            for w in o.widthMult.map({ [$0] }) ?? [0.25, 0.5, 0.75, 1, 1.5, 2] { add(w) }
        case .mobilenet, .mobilenetv2, .shufflenet:
            // int(base * w) is the stem's width: keep the decimals (up to 3 places) that give it.
            let base = arch == .shufflenet ? 24.0 : 32.0
            let widths = o.widthMult.map { [$0] } ?? simplestDecimals(upTo: 4).filter { Int(base * $0) == stemShape[0] }
            let groups: [Int?] = arch == .shufflenet ? (o.groups.map { [$0] } ?? [3, 8]) : [nil]
            for w in widths { for g in groups { add(w, groups: g) } }
        }
        var firstProblem: String?
        for c in candidates {
            guard let declared = try? Network.declaredTensors(c) else { continue }
            if let problem = difference(declared, shapes) { firstProblem = firstProblem ?? "\(c.summary): \(problem)"; continue }
            return c
        }
        throw ImportError.noFit(arch: arch, detail: firstProblem ?? "no width gives a stem of \(stemShape[0]) channels")
    }

    /// Decimals in (0, limit] with up to three places, those with fewer places first.
    private static func simplestDecimals(upTo limit: Int) -> [Double] {
        var out: [Double] = [], seen = Set<Int>()
        for step in [1000, 100, 10, 1] {   // thousandths: whole numbers, then one, two, three places
            for k in stride(from: step, through: 1000 * limit, by: step) where seen.insert(k).inserted { out.append(Double(k) / 1000) }
        }
        return out
    }

    /// The first way the declared tensors and the file's differ, or nil when they agree.
    private static func difference(_ declared: [(name: String, shape: [Int])], _ file: [String: [Int]]) -> String? {
        for d in declared {
            guard let s = file[d.name] else { return "no tensor \(quoted(d.name))" }
            if s != d.shape { return "\(quoted(d.name)) is \(s), expected \(d.shape)" }
        }
        if declared.count != file.count, let extra = file.keys.sorted().first(where: { n in !declared.contains { $0.name == n } }) {
            return "an extra tensor \(quoted(extra))"
        }
        return nil
    }

    // MARK: - The file name, as the authors name their files

    /// Notes where `cifar10-lru14-ckpt-08934.t7`-style names disagree with what the tensors say.
    private static func fileNameNotes(_ path: String, config: ModelConfig, dataset: DatasetKind) -> [String] {
        let name = (path as NSString).lastPathComponent.lowercased()
        var notes: [String] = []
        func note(_ what: String, _ named: String, _ found: String) {
            if named != found { notes.append("the file name says \(what) \(named); the tensors say \(found), which is used") }
        }
        let arch: Architecture? = name.contains("shufflenetv2") ? .shufflenetv2 : name.contains("shufflenet") ? .shufflenet
            : name.contains("mobilenetv2") ? .mobilenetv2 : name.contains("mobilenet") ? .mobilenet : name.contains("lru") ? .lrunet : nil
        if let arch { note("architecture", arch.rawValue, config.arch.rawValue) }
        if config.arch == .lrunet, arch == .lrunet, let r = name.firstMatch(of: /lru(\d+)/), let n = Int(r.1) {
            note("N =", "\(n)", "\(config.layerReuse)")
        }
        if let r = name.firstMatch(of: /-([0-9.]+)x-/) {
            let text = String(r.1)
            let width = text.contains(".") ? Double(text) : text.hasPrefix("0") ? Double("0." + text.dropFirst()) : Double(text)
            if let width { note("width", ModelConfig(widthMult: width).widthText, config.widthText) }
        }
        let named: DatasetKind? = name.hasPrefix("cifar100") ? .cifar100 : name.hasPrefix("cifar10") ? .cifar10
            : name.hasPrefix("fashionmnist") || name.hasPrefix("fmnist") ? .fashionMNIST : nil
        if let named { note("data set", named.rawValue, dataset.rawValue) }
        return notes
    }
}

extension SafeTensorsFile {
    /// A checkpoint at `path`: a safetensors file as it is, or a PyTorch legacy checkpoint
    /// (`.t7`, `.pth` before PyTorch 1.6) imported in memory; `notes` are the import's.
    public static func checkpoint(at path: String) throws -> (file: SafeTensorsFile, notes: [String]) {
        try checkpoint(data: FileBytes.read(path), name: path)
    }

    /// The same for bytes in memory (what the fuzz harnesses feed). A file that starts with the
    /// legacy format's pickled magic number is a PyTorch checkpoint; anything else is read as
    /// safetensors, whose first byte (the header length's lowest) can be a pickle's 0x80 too.
    /// Only when that fails on bytes that look like a pickle does the pickle reader's error,
    /// which names what the pickle tried, stand instead.
    public static func checkpoint(data: Data, name: String) throws -> (file: SafeTensorsFile, notes: [String]) {
        func imported() throws -> (file: SafeTensorsFile, notes: [String]) {
            let c = try ImportedCheckpoint(TorchCheckpoint(data: data, name: name), fileName: name)
            return (try SafeTensorsFile(data: try c.safetensors(), name: name), c.notes)
        }
        if TorchCheckpoint.startsWithMagic(data) { return try imported() }
        do { return (try SafeTensorsFile(data: data, name: name), []) }
        catch {
            guard data.count >= 2, data[data.startIndex] == 0x80, (2...5).contains(data[data.startIndex + 1]) else { throw error }
            return try imported()
        }
    }
}

/// Why a checkpoint's tensors could not be turned into a network of ours.
public enum ImportError: Error, CustomStringConvertible, Equatable {
    case unknownArchitecture(names: [String])
    case missing(String, Architecture)
    case noFit(arch: Architecture, detail: String)
    case duplicate(String)

    public var description: String {
        switch self {
        case let .unknownArchitecture(names):
            return "the tensors (\(names.prefix(3).map { quoted($0) }.joined(separator: ", "))\(names.count > 3 ? ", ..." : "")) are none of lrunet, mobilenet, mobilenetv2, shufflenet, shufflenetv2; name it with --arch"
        case let .missing(name, arch): return "no tensor \(quoted(name)), which every \(arch.rawValue) has"
        case let .noFit(arch, detail): return "the tensors fit no \(arch.rawValue) configuration (\(detail)); state it with --width, --reuse or --groups"
        case let .duplicate(name): return "tensor \(quoted(name)) appears twice once 'module.' is dropped"
        }
    }
}
