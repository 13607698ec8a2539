import ArgumentParser
import Foundation
import LruNet

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The paper's comparison: every checkpoint's size, work, accuracy and speed side by side.",
        discussion: """
        For each checkpoint in the pretrained directory (the authors' 18: LruNet and MobileNet, \\
        MobileNetV2, ShuffleNet, ShuffleNetV2 on Fashion-MNIST, CIFAR-10 and CIFAR-100): parameters \\
        and parameters if unrolled (a reused block counted once per application), MACs per image, \\
        conv weight bytes fetched per forward against an unrolled network, the reported accuracy, \\
        the accuracy measured here (Fashion-MNIST, and CIFAR when --cifar10/--cifar100 point at \\
        the official binary files), and images/s at batch 1 and 256 on this machine (median of \\
        --runs runs).

        Writes compare.md, compare.csv and compare.svg (accuracy against parameters and against \\
        MACs, one pair of scatters per data set) to --out.

        Example (the README's table): lrunet compare --out docs/compare
        """)

    @Option(help: ArgumentHelp("Directory of checkpoints (default: $LRUNET_PRETRAINED or ../shared/pretrained).", valueName: "dir"))
    var pretrained: String?
    @Option(help: ArgumentHelp("Fashion-MNIST directory.", valueName: "dir"))
    var data: String = "/usr/share/datasets/fashion-mnist"
    @Option(help: ArgumentHelp("CIFAR-10 binary files, to measure the CIFAR-10 accuracies too.", valueName: "dir"))
    var cifar10: String?
    @Option(help: ArgumentHelp("CIFAR-100 binary files.", valueName: "dir"))
    var cifar100: String?
    @Option(help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out: String = "runs/compare"
    @Option(help: "Timed runs per batch size; the median counts.")
    var runs: Int = 5
    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?
    @Flag(help: "Skip the timing (sizes and accuracy only).")
    var noSpeed = false
    @Option(help: "Threads (0 = the CPUs this process may use).")
    var threads: Int = 0

    func validate() throws {
        guard (1...50).contains(runs) else { throw ValidationError("--runs must be between 1 and 50") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard (0...256).contains(threads) else { throw ValidationError("--threads must be between 0 and 256") }
    }

    struct Row {
        let name: String, dataset: String, config: ModelConfig, cost: CostReport
        let reported: Double?, measured: (correct: Int, total: Int)?, b1: Double?, b256: Double?
    }

    func run() throws {
        try reportingErrors {
            guard let dir = pretrained ?? Pretrained.directory else {
                throw ValidationError("no checkpoint directory; pass --pretrained DIR or set LRUNET_PRETRAINED")
            }
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !files.isEmpty else { throw ValidationError("\(dir) holds no .safetensors checkpoints") }
            var sets: [DatasetKind: LabeledImages] = [:]
            for (kind, path) in [(DatasetKind.fashionMNIST, Optional(data)), (.cifar10, cifar10), (.cifar100, cifar100)] {
                guard let path, FileManager.default.fileExists(atPath: path) else { continue }
                sets[kind] = try kind.load(directory: path, split: .test)
            }
            let threading = Threading(threads: threads)
            print("comparing \(files.count) checkpoints from \(dir); \(threading.threads) thread(s), kernels \(InstructionSet.active)")
            var rows: [Row] = []
            var bar = ProgressBar(total: files.count, label: "compare", unit: "ckpt")
            for (i, file) in files.enumerated() {
                let path = (dir as NSString).appendingPathComponent(file)
                let model = try Network(contentsOf: path, threading: threading)
                let meta = try SafeTensorsFile(path: path).metadata
                let kind = DatasetKind(name: meta["dataset"] ?? "") ?? .fashionMNIST
                let side = kind == .fashionMNIST ? 28 : 32
                let cost = try model.costReport(height: side, width: side)
                var measured: (Int, Int)?
                if let test = sets[kind] {
                    let r = try model.evaluate(test, batchSize: 256, limit: limit)
                    measured = (r.correct, r.total)
                }
                let speed = noSpeed ? nil : try (Self.rate(model, batch: 1, side: side, runs: runs), Self.rate(model, batch: 256, side: side, runs: runs))
                rows.append(Row(name: (file as NSString).deletingPathExtension, dataset: kind.rawValue, config: try ModelConfig(metadata: meta), cost: cost,
                                reported: meta["reported_test_accuracy"].flatMap(Double.init), measured: measured,
                                b1: speed?.0, b256: speed?.1))
                bar.update(i + 1)
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let md = Self.markdown(rows)
            print(md)
            try md.write(toFile: (out as NSString).appendingPathComponent("compare.md"), atomically: true, encoding: .utf8)
            try Self.csv(rows).write(toFile: (out as NSString).appendingPathComponent("compare.csv"), atomically: true, encoding: .utf8)
            try Self.svg(rows).write(toFile: (out as NSString).appendingPathComponent("compare.svg"), atomically: true, encoding: .utf8)
            print("wrote \(out)/compare.md, compare.csv and compare.svg")
        }
    }

    /// Images/s at `batch`: one untimed pass, then the median of `runs` runs of at least 0.2 s.
    static func rate(_ model: Network, batch: Int, side: Int, runs: Int) throws -> Double {
        var rng = SplitMix64(seed: 5)
        let c = model.inputChannels
        let x = Tensor(shape: [batch, c, side, side], data: (0..<(batch * c * side * side)).map { _ in rng.nextUniform() })
        _ = try model(x)
        var rates: [Double] = []
        for _ in 0..<runs {
            var n = 0
            let t0 = Date()
            repeat { _ = try model(x); n += batch } while Date().timeIntervalSince(t0) < 0.2
            rates.append(Double(n) / Date().timeIntervalSince(t0))
        }
        return rates.sorted()[runs / 2]
    }

    static func accuracy(_ r: Row) -> Double? { r.measured.map { 100 * Double($0.correct) / Double($0.total) } }

    static func markdown(_ rows: [Row]) -> String {
        var lines = ["| checkpoint | architecture | params | params unrolled | MACs / image | conv weight bytes / forward, fetched vs unrolled | reported | measured here | img/s b1 | img/s b256 |",
                     "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows {
            let c = r.cost
            let measured = r.measured.map { String(format: "**%.2f%%** (%d/%d)", 100 * Double($0.correct) / Double($0.total), $0.correct, $0.total) } ?? "-"
            let work = String(format: "%.2f M | %.2f vs %.2f MB", Double(c.totalMACs) / 1e6, Double(c.convBytesFetched) / 1e6,
                              Double(c.convBytesUnrolled) / 1e6)
            let reported = r.reported.map { String(format: "%.2f%%", $0) } ?? "-"
            let b1 = r.b1.map { String(format: "%.0f", $0) } ?? "-", b256 = r.b256.map { String(format: "%.0f", $0) } ?? "-"
            let size = "\(c.parameters.grouped) | \(c.unrolledParameters.grouped)"
            lines.append("| \(r.name) | \(r.config.summary) | \(size) | \(work) | \(reported) | \(measured) | \(b1) | \(b256) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csv(_ rows: [Row]) -> String {
        var lines = ["checkpoint,dataset,arch,width_mult,layer_reuse,params,params_unrolled,macs_per_image,conv_bytes_fetched,conv_bytes_unrolled,reported_accuracy,measured_correct,measured_total,img_s_b1,img_s_b256"]
        for r in rows {
            let c = r.cost
            var fields: [String] = [r.name, r.dataset, r.config.arch.rawValue, r.config.widthText, "\(r.config.layerReuse)"]
            fields += ["\(c.parameters)", "\(c.unrolledParameters)", "\(c.totalMACs)", "\(c.convBytesFetched)", "\(c.convBytesUnrolled)"]
            fields.append(r.reported.map { "\($0)" } ?? "")
            fields.append(r.measured.map { "\($0.correct)" } ?? "")
            fields.append(r.measured.map { "\($0.total)" } ?? "")
            fields.append(r.b1.map { String(format: "%.1f", $0) } ?? "")
            fields.append(r.b256.map { String(format: "%.1f", $0) } ?? "")
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Two scatters per data set: accuracy against parameters and against MACs (the measured
    /// accuracy where there is one, else the reported).
    static func svg(_ rows: [Row]) -> String {
        var panels: [SVGChart.ScatterPanel] = []
        for dataset in ["fashion-mnist", "cifar10", "cifar100"] {
            let here = rows.filter { $0.dataset == dataset }
            guard !here.isEmpty else { continue }
            func points(_ x: (Row) -> Double) -> [SVGChart.Point] {
                here.compactMap { r in
                    guard let acc = accuracy(r) ?? r.reported else { return nil }
                    let label = r.config.arch == .lrunet ? "N=\(r.config.layerReuse)" : "x\(r.config.widthText)"
                    return SVGChart.Point(x: x(r), y: acc, label: label, color: r.config.arch.traits.colour)
                }
            }
            panels.append(SVGChart.ScatterPanel(title: "\(dataset): accuracy vs parameters", xLabel: "parameters", yLabel: "test accuracy %",
                                                points: points { Double($0.cost.parameters) }))
            panels.append(SVGChart.ScatterPanel(title: "\(dataset): accuracy vs MACs", xLabel: "MACs per image (log scale)", yLabel: "test accuracy %",
                                                points: points { Double($0.cost.totalMACs) }, logX: true))
        }
        return SVGChart.scatter(title: "Layer reuse against the baselines (the authors' checkpoints)", panels: panels, columns: 2,
                                legend: Architecture.allCases.map { ($0.displayName, $0.traits.colour) })
    }
}
