import ArgumentParser
import Foundation
import LruNet

/// `lrunet study`: the paper's experiment as a grid of runs (recipe x N x seed) that can span
/// sessions and machines, then its statistics (StudyReport.swift).
struct Study: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Does reuse raise accuracy? Train LruNet over a grid of N x seeds x recipes, then report the statistics.",
        discussion: """
        Each run trains from scratch with the recipe, holds out the end of the training set as a \
        validation split, and is scored on the whole test set after its last epoch. A finished run \
        leaves small text files in --results (result.json, log.csv: commit them); a run in progress \
        keeps its checkpoints in --runs, so an interrupted study resumes where it stopped and a \
        finished run is never repeated. After the runs (or with --report alone) the statistics of \
        every result in --results are written to summary.md, summary.json, summary.svg and \
        curves.svg there: per N each seed's accuracy, mean and SD, the difference to N = 1 with \
        Welch's 95% interval, McNemar's test per seed, and the verdict of docs/reuse-study.md's rule. \
        Groups that differ only in epochs also get the budget trend (trend.svg): the difference \
        on the seed they share, budget by budget, and which way it moves.

        Examples:
          lrunet study --reuse 1,10 --seeds 1,2,3 --epochs 15                  (make study)
          lrunet study --reuse 1,10 --seeds 1 --epochs 10,20,40                the budget trend
          lrunet study --recipe plain --reuse 1,10 --seeds 1,2,3 --epochs 15   the arm without augmentation
          lrunet study --dataset cifar10 --data DIR --reuse 1,14 --seeds 1,2,3 --epochs 30
          lrunet study --report                                                statistics only
        """)

    @Option(help: ArgumentHelp("Reuse counts N, comma-separated.", valueName: "list"))
    var reuse = "1,10"
    @Option(help: ArgumentHelp("Seeds, comma-separated.", valueName: "list"))
    var seeds = "1,2,3"
    @Option(help: ArgumentHelp("Epochs per run, comma-separated for a budget trend.", valueName: "list"))
    var epochs = "15"
    @Option(help: ArgumentHelp("Recipes, comma-separated: authors (their main.py) and plain (the same without augmentation).", valueName: "list"))
    var recipe = "authors"
    @Option(help: "fashion-mnist, cifar10 or cifar100.")
    var dataset = "fashion-mnist"
    @Option(help: ArgumentHelp("Data set directory (default: the Fashion-MNIST Debian path; CIFAR needs it).", valueName: "dir"))
    var data: String?
    @Option(help: "LruNet's width: 1, or 2 (the paper's CIFAR-100 networks).")
    var width = 1
    @Option(help: "Training images held out for validation (the last ones of the training set).")
    var validation = 5000
    @Option(help: ArgumentHelp("Where finished runs and the statistics go (small text files to commit).", valueName: "dir"))
    var results = "docs/study"
    @Option(help: ArgumentHelp("Where runs in progress keep their checkpoints.", valueName: "dir"))
    var runs = "runs/study"
    @Option(help: "Train on the first N training images only (a smoke test; kept apart in the results).")
    var limit: Int?
    @Option(help: "Evaluate on the first N test images only (a smoke test; kept apart in the results).")
    var testLimit: Int?
    @Option(help: "Threads (0 = all cores).")
    var threads = 0
    @Option(help: "Stop after this many new runs (0: all of the grid).")
    var maxRuns = 0
    @Flag(help: "Only write the statistics of the results already in --results.")
    var report = false

    func validate() throws {
        guard DatasetKind(name: dataset) != nil else { throw ValidationError("--dataset must be fashion-mnist, cifar10 or cifar100") }
        guard let r = Self.list(reuse), r.allSatisfy({ (1...64).contains($0) }) else { throw ValidationError("--reuse takes whole numbers 1...64, comma-separated") }
        guard Self.list(seeds) != nil else { throw ValidationError("--seeds takes whole numbers, comma-separated") }
        guard let e = Self.list(epochs), e.allSatisfy({ (1...10_000).contains($0) }) else { throw ValidationError("--epochs takes whole numbers 1...10000, comma-separated") }
        guard recipes != nil else { throw ValidationError("--recipe takes authors and plain, comma-separated") }
        guard width == 1 || width == 2 else { throw ValidationError("--width must be 1 or 2") }
        guard validation >= 0 else { throw ValidationError("--validation must not be negative") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
        guard threads >= 0 && threads <= 256 else { throw ValidationError("--threads must be between 0 and 256") }
        guard maxRuns >= 0 else { throw ValidationError("--max-runs must not be negative") }
    }

    static func list(_ s: String) -> [Int]? {
        let parts = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty || parts.contains(nil) ? nil : parts.map { $0! }
    }
    var recipes: [Recipe]? {
        let parts = recipe.split(separator: ",").map { Recipe(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty || parts.contains(nil) ? nil : parts.map { $0! }
    }

    func run() throws {
        try reportingErrors {
            if !report { try runGrid() }
            let summary = try StudyReport(results: results)
            try summary.write()
            print(summary.markdown)
        }
    }

    private func runGrid() throws {
        let kind = DatasetKind(name: dataset)!
        guard let dir = data ?? kind.defaultDirectory else {
            throw ValidationError("\(kind.rawValue) has no default location; pass --data DIR with the official binary files")
        }
        let train = try kind.load(directory: dir, split: .train), test = try kind.load(directory: dir, split: .test)
        let threading = Threading(threads: threads == 0 ? CPUBudget.threads : threads)
        var started = 0
        for recipe in recipes! {
            for e in Self.list(epochs)! {
                // Smoke tests (limits) never mix with real runs.
                let smoke = (limit.map { "-train\($0)" } ?? "") + (testLimit.map { "-test\($0)" } ?? "")
                let group = "\(kind.rawValue)-\(width == 2 ? "2x-" : "")\(recipe.rawValue)-e\(e)\(smoke)"
                // Seed by seed, every N of a seed in turn: a grid cut short by a session's end
                // leaves complete pairs (what the difference and McNemar's test compare).
                for seed in Self.list(seeds)! {
                    for n in Self.list(reuse)! {
                        let name = "n\(n)-s\(seed)"
                        let done = (results as NSString).appendingPathComponent("\(group)/\(name)")
                        if FileManager.default.fileExists(atPath: done + "/result.json") { print("\(group)/\(name): done, kept"); continue }
                        if maxRuns > 0 && started == maxRuns { print("\(group)/\(name): left for later (--max-runs \(maxRuns))"); continue }
                        started += 1
                        try runOne(group: group, name: name, recipe: recipe, epochs: e, reuse: n, seed: UInt64(seed),
                                   train: train, test: test, kind: kind, threading: threading, resultDir: done)
                    }
                }
            }
        }
    }

    private func runOne(group: String, name: String, recipe: Recipe, epochs: Int, reuse n: Int, seed: UInt64,
                        train: LabeledImages, test: LabeledImages, kind: DatasetKind, threading: Threading, resultDir: String) throws {
        let config = ModelConfig.lrunet(numClasses: train.numClasses, widthMult: Double(width), layerReuse: n,
                                        inChannels: train.channels, dropout: recipe.dropout)
        let model = try Network(config: config, threading: threading)
        var o = TrainingOptions()
        recipe.apply(to: &o)
        o.epochs = epochs; o.seed = seed; o.trainLimit = limit; o.testLimit = testLimit
        o.validationSize = validation > 0 ? validation : nil
        let work = (runs as NSString).appendingPathComponent("\(group)/\(name)")
        let trainer = try Trainer(model: model, train: train, test: test, options: o, directory: work, datasetName: kind.rawValue)
        print("\(group)/\(name): \(config.summary), recipe \(recipe.rawValue), \(epochs) epochs, seed \(seed), \(trainer.train.count) training images, \(trainer.validation?.count ?? 0) held out, \(threading.threads) thread(s)")
        try runTrainer(trainer, resume: true, label: "\(name) ")
        guard let last = trainer.history.last else { return }

        // The primary figure: the last epoch's model on every test image, kept image by image for McNemar.
        let scored = try model.evaluate(trainer.test, keepLogits: true)
        let predicted = Tensor(shape: [scored.total, model.classes], data: scored.logits!).argmaxRows()
        var mask = [UInt8](repeating: 0, count: (scored.total + 7) / 8)
        for (i, p) in predicted.enumerated() where p == Int(trainer.test.labels[i]) { mask[i / 8] |= 1 << (i % 8) }
        let cost = try model.costReport(height: train.height, width: train.width)
        let result = StudyResult(
            dataset: kind.rawValue, recipe: recipe.rawValue, epochs: epochs, reuse: n, seed: Int(seed), width: width,
            trainImages: trainer.train.count, validationImages: trainer.validation?.count ?? 0,
            testCorrect: scored.correct, testTotal: scored.total, testAccuracy: 100 * scored.accuracy,
            trainAccuracy: 100 * last.trainAccuracy, trainLoss: last.trainLoss,
            validationAccuracy: last.validationAccuracy.map { 100 * $0 }, validationLoss: last.validationLoss,
            parameters: cost.parameters, trainSeconds: trainer.history.reduce(0) { $0 + $1.seconds },
            imagesPerSecond: trainer.history.map(\.imagesPerSecond).reduce(0, +) / Double(trainer.history.count),
            threads: threading.threads, cpu: InstructionSet.cpuDescription, kernels: InstructionSet.active.rawValue,
            lruNetVersion: LruNetVersion.string, correct: mask.map { String(format: "%02x", $0) }.joined())
        try FileManager.default.createDirectory(atPath: resultDir, withIntermediateDirectories: true)
        try Data(contentsOf: URL(fileURLWithPath: work + "/log.csv")).write(to: URL(fileURLWithPath: resultDir + "/log.csv"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: URL(fileURLWithPath: resultDir + "/result.json"), options: .atomic)  // the run's "done"
        print(String(format: "%@/%@: test accuracy %.2f%% (%d/%d), train %.2f%%", group, name, result.testAccuracy,
                     result.testCorrect, result.testTotal, result.trainAccuracy))
    }
}

/// What a finished run leaves in the results: small enough to commit.
struct StudyResult: Codable {
    var dataset: String, recipe: String, epochs: Int, reuse: Int, seed: Int, width: Int
    var trainImages: Int, validationImages: Int
    var testCorrect: Int, testTotal: Int, testAccuracy: Double
    var trainAccuracy: Double, trainLoss: Double
    var validationAccuracy: Double?, validationLoss: Double?
    var parameters: Int, trainSeconds: Double, imagesPerSecond: Double
    var threads: Int, cpu: String, kernels: String, lruNetVersion: String
    /// Which test images the final model classified correctly: bit i of byte i/8, as hex.
    var correct: String

    enum CodingKeys: String, CodingKey {
        case dataset, recipe, epochs, reuse, seed, width, parameters, threads, cpu, kernels, correct
        case trainImages = "train_images", validationImages = "validation_images"
        case testCorrect = "test_correct", testTotal = "test_total", testAccuracy = "test_accuracy"
        case trainAccuracy = "train_accuracy", trainLoss = "train_loss"
        case validationAccuracy = "validation_accuracy", validationLoss = "validation_loss"
        case trainSeconds = "train_seconds", imagesPerSecond = "images_per_second", lruNetVersion = "lrunet_version"
    }

    /// Whether each test image was classified correctly, decoded from ``correct``.
    func correctness() -> [Bool] {
        let hex = Array(correct.utf8)
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: hex.count - 1, by: 2) { bytes.append(UInt8(String(decoding: hex[i...i + 1], as: UTF8.self), radix: 16) ?? 0) }
        return (0..<testTotal).map { i in i / 8 < bytes.count && bytes[i / 8] & (1 << (i % 8)) != 0 }
    }
}
