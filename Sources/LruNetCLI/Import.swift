import ArgumentParser
import Foundation
import LruNet

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn the authors' PyTorch .t7 checkpoints into safetensors, with no Python or PyTorch.",
        discussion: """
        Reads PyTorch's legacy torch.save format (before PyTorch 1.6), which is how the authors \
        publish their 18 checkpoints (pretrained/*.t7 in okankop/CNN-layer-reuse, MIT licence). \
        The pickle inside is run by a reader that only builds data: any global other than \
        collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.FloatStorage, and any \
        opcode a state dict does not use, is refused with one line and nothing is written.

        The output keeps PyTorch's names (DataParallel's 'module.' dropped) and carries the \
        metadata the loader needs: arch, num_classes, width_mult, in_channels, layer_reuse or \
        groups, dataset, and epoch and reported_test_accuracy from the file. They are inferred \
        from the tensors' names and shapes and checked against the network they describe; the \
        file name is only compared (a note says where it disagrees). The flags below state a \
        value instead; it must still fit the tensors.

        Every file is read and checked before any output is written. Without --out the output \
        is named like ../shared/pretrained: the .t7 name without '-ckpt', 'fmnist-' spelled \
        'fashionmnist-', in --out-dir (default: beside the input).

        Examples:
          lrunet import fashionmnist-lru10-ckpt-09346.t7 --out lru10.safetensors
          lrunet import CNN-layer-reuse/pretrained/*.t7 --out-dir pretrained
          lrunet eval --weights fashionmnist-lru10-ckpt-09346.t7      (a .t7 also loads directly)
        """)

    @Argument(help: ArgumentHelp("PyTorch legacy checkpoints (.t7).", valueName: "file.t7"))
    var files: [String]
    @Option(help: ArgumentHelp("Output file (one input only).", valueName: "file.safetensors"))
    var out: String?
    @Option(help: ArgumentHelp("Output directory (default: beside each input).", valueName: "dir"))
    var outDir: String?

    @Option(help: "Architecture: lrunet, mobilenet, mobilenetv2, shufflenet or shufflenetv2.")
    var arch: String?
    @Option(help: "Width multiplier (width_mult), e.g. 0.25.")
    var width: Double?
    @Option(help: "LruNet's N (layer_reuse).")
    var reuse: Int?
    @Option(help: "ShuffleNet's groups (3 or 8).")
    var groups: Int?
    @Option(help: "Number of classes.")
    var classes: Int?
    @Option(help: "Input channels.")
    var inChannels: Int?
    @Option(help: "Data set: fashion-mnist, cifar10 or cifar100.")
    var dataset: String?
    @Flag(help: "Print one JSON object per file instead of text.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one .t7 file") }
        if out != nil && files.count > 1 { throw ValidationError("--out takes one input; use --out-dir for several") }
        if let arch, Architecture(rawValue: arch) == nil {
            throw ValidationError("--arch must be one of \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let dataset, DatasetKind(name: dataset) == nil { throw ValidationError("--dataset must be fashion-mnist, cifar10 or cifar100") }
    }

    /// The output name of `input`, in ../shared/pretrained's spelling.
    func outputPath(_ input: String) -> String {
        if let out { return out }
        var stem = ((input as NSString).lastPathComponent as NSString).deletingPathExtension.replacingOccurrences(of: "-ckpt", with: "")
        if stem.hasPrefix("fmnist-") { stem = "fashionmnist-" + stem.dropFirst(7) }
        return ((outDir ?? (input as NSString).deletingLastPathComponent) as NSString).appendingPathComponent(stem + ".safetensors")
    }

    func run() throws {
        try reportingErrors {
            let overrides = ImportOverrides(arch: arch.flatMap(Architecture.init(rawValue:)), widthMult: width, layerReuse: reuse, groups: groups,
                                            numClasses: classes, inChannels: inChannels, dataset: dataset.flatMap(DatasetKind.init(name:)))
            // All inputs first: a bad file among several leaves nothing half done.
            let imported = try files.map { try ImportedCheckpoint(TorchCheckpoint(path: $0), fileName: $0, overrides: overrides) }
            if let outDir { try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true) }
            for (input, checkpoint) in zip(files, imported) {
                let path = outputPath(input)
                try checkpoint.write(to: path)
                if json {
                    let record: [String: Any] = ["input": input, "output": path, "metadata": checkpoint.metadata, "notes": checkpoint.notes,
                                                 "tensors": checkpoint.tensors.count]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
                } else {
                    let m = checkpoint.metadata
                    print("\(input) -> \(path): \(checkpoint.config.summary), \(checkpoint.config.numClasses) classes, \(m["dataset"]!)"
                          + (m["epoch"].map { ", epoch \($0)" } ?? "") + (m["reported_test_accuracy"].map { ", reported \($0)%" } ?? "")
                          + ", \(checkpoint.tensors.count) tensors")
                    for note in checkpoint.notes { print("  note: \(note)") }
                }
            }
        }
    }
}
