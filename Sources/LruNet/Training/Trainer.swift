import Foundation

/// Everything that defines a training run.
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 10
    public var batchSize = 128
    public var learningRate: Float = 0.1
    /// "step" (the authors' x0.1 at 2/3 and 5/6 of the run) or "cosine".
    public var schedule = "cosine"
    public var warmupEpochs: Double = 0
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var nesterov = false
    public var seed: UInt64 = 1
    /// Train on the first `limit` training images only.
    public var trainLimit: Int?
    /// Evaluate on the first `testLimit` test images only.
    public var testLimit: Int?
    public var augment = true
    /// Largest random rotation in degrees (the authors: 10; 0 turns rotation off).
    public var rotationDegrees: Float = 10
    /// Crop side for training (nil: the input size; 32: the authors' choice for Fashion-MNIST).
    public var cropSize: Int?
    public var evalBatch = 256

    public init() {}

    public var lrSchedule: LearningRateSchedule {
        schedule == "step" ? .authors : .cosine(warmupEpochs: warmupEpochs)
    }
    public var optimizer: SGD { SGD(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov) }
    public var augmentation: Augmentation {
        augment ? Augmentation(cropSize: cropSize, rotationDegrees: rotationDegrees) : .none
    }
}

/// Why a run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
    case diverged(epoch: Int, step: Int, loss: Double)
    case nonFiniteState(epoch: Int, tensor: String, value: Float)
    case resumeMismatch(String)

    public var description: String {
        switch self {
        case let .diverged(e, s, l):
            return "loss became \(l.isNaN ? "NaN" : "\(l)") at epoch \(e + 1), step \(s + 1); stopped, the last good checkpoint is kept (try a lower --lr)"
        case let .nonFiniteState(e, tensor, v):
            return "'\(tensor)' became \(v) in epoch \(e + 1); stopped, the last good checkpoint is kept (try a lower --lr, or check the data)"
        case .resumeMismatch(let why): return "cannot resume: \(why)"
        }
    }
}

/// Progress within an epoch, for progress bars.
public struct StepProgress: Sendable {
    public let epoch: Int, step: Int, steps: Int, images: Int, totalImages: Int
    public let runningLoss: Double, runningAccuracy: Double
    public let learningRate: Float
}

/// Trains a network on a labelled set with SGD, evaluating on the test set after every
/// epoch and writing a checkpoint, `log.csv` and `curves.svg` to `directory`.
///
/// Every random choice derives from `(seed, epoch)`, so `run(resume: true)` after an
/// interruption continues from the last finished epoch and ends with the same weights
/// as an uninterrupted run with the same seed and thread count.
public final class Trainer {
    public let model: Network
    public let train: LabeledImages
    public let test: LabeledImages
    public let options: TrainingOptions
    public let directory: String
    public let datasetName: String
    public private(set) var history: [EpochRecord] = []
    /// Called with a one-line note the user should see (a resume whose result will match the
    /// uninterrupted run only to rounding).
    public var onNote: ((String) -> Void)?

    public init(model: Network, train: LabeledImages, test: LabeledImages, options: TrainingOptions,
                directory: String, datasetName: String) throws {
        guard train.channels == model.config.inChannels, test.channels == model.config.inChannels else {
            throw ModelError.inputChannels(expected: model.config.inChannels, got: train.channels)
        }
        guard options.epochs >= 1 else { throw ModelError.invalidConfig(field: "epochs", value: "\(options.epochs)", allowed: "at least 1") }
        guard options.batchSize >= 1 else { throw ModelError.invalidConfig(field: "batch size", value: "\(options.batchSize)", allowed: "at least 1") }
        self.model = model
        self.train = options.trainLimit.map { train.prefix($0) } ?? train
        self.test = options.testLimit.map { test.prefix($0) } ?? test
        self.options = options; self.directory = directory; self.datasetName = datasetName
    }

    /// Sorted keys, so checkpoint metadata is the same bytes for the same history.
    static var sortedEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }

    var runMetadata: [String: String] {
        let json = (try? Trainer.sortedEncoder.encode(options)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        return ["options": json, "dataset": datasetName, "threads": "\(model.threading.threads)"]
    }

    /// Runs the remaining epochs. With `resume`, first restores the checkpoint in `directory`
    /// (a directory without one starts a new run: resuming a run killed before its first
    /// checkpoint is starting it). Checks first that `directory` can hold checkpoints.
    /// - Returns: whether it continued a checkpoint.
    @discardableResult
    public func run(resume: Bool, onStep: ((StepProgress) -> Void)? = nil, onEpoch: ((EpochRecord) -> Void)? = nil) throws -> Bool {
        try Checkpoint.prepare(directory: directory)
        var start = 0
        let resumed = resume && Checkpoint.exists(directory: directory)
        if resumed {
            let (_, opt) = try Checkpoint.load(into: model, directory: directory)
            guard let json = opt["options"], let saved = try? JSONDecoder().decode(TrainingOptions.self, from: Data(json.utf8)) else {
                throw TrainingError.resumeMismatch("the optimizer checkpoint has no run options")
            }
            var a = saved, b = options
            a.epochs = 0; b.epochs = 0                     // the run may be extended
            guard a == b else { throw TrainingError.resumeMismatch("options differ from the interrupted run's (\(json))") }
            if let was = opt["threads"].flatMap(Int.init), was != model.threading.threads {
                onNote?("this run started with \(was) thread(s) and continues with \(model.threading.threads): its weights will match an uninterrupted run to rounding, not bit for bit (docs/determinism.md)")
            }
            history = try JSONDecoder().decode([EpochRecord].self, from: Data((opt["history"] ?? "[]").utf8))
            start = history.count
        } else {
            model.initialise(seed: SeedStream.seed(options.seed, 0, 0))
        }
        let aug = options.augmentation
        let side = aug.outputSide(train.height)
        let b = options.batchSize
        let steps = (train.count + b - 1) / b
        let imageIn = train.imageSize, imageOut = train.channels * side * side
        let batchImages = FloatBuffer(count: b * imageOut)
        var batchLabels = [Int32](repeating: 0, count: b)

        for epoch in start..<options.epochs {
            let t0 = Date()
            let order = SeedStream.permutation(train.count, seed: SeedStream.seed(options.seed, epoch, 1))
            var augRNG = SplitMix64(seed: SeedStream.seed(options.seed, epoch, 2))
            var lossSum = 0.0, correct = 0, seen = 0
            var lr = options.learningRate
            for step in 0..<steps {
                let n = min(b, train.count - step * b)
                train.images.withUnsafeBufferPointer { src in
                    for i in 0..<n {
                        let idx = order[step * b + i]
                        batchLabels[i] = train.labels[idx]
                        aug.apply(src.baseAddress! + idx * imageIn, channels: train.channels, height: train.height, width: train.width,
                                  into: batchImages.pointer + i * imageOut, rng: &augRNG)
                    }
                }
                lr = options.lrSchedule.rate(base: options.learningRate, epoch: Double(epoch) + Double(step) / Double(steps),
                                             totalEpochs: options.epochs)
                let r = try batchLabels.withUnsafeBufferPointer { labels in
                    try model.trainStep(images: batchImages.pointer, labels: labels.baseAddress!, batch: n, channels: train.channels,
                                        height: side, width: side, optimizer: options.optimizer, learningRate: lr,
                                        seed: SeedStream.seed(options.seed, epoch, 3, step))
                }
                guard r.loss.isFinite else { throw TrainingError.diverged(epoch: epoch, step: step, loss: r.loss) }
                lossSum += r.loss * Double(n); correct += r.correct; seen += n
                onStep?(StepProgress(epoch: epoch, step: step, steps: steps, images: seen, totalImages: train.count,
                                     runningLoss: lossSum / Double(seen), runningAccuracy: Double(correct) / Double(seen),
                                     learningRate: lr))
            }
            let trainSeconds = Date().timeIntervalSince(t0)
            let eval = try model.evaluate(test, batchSize: options.evalBatch)
            let record = EpochRecord(epoch: epoch, learningRate: lr, trainLoss: lossSum / Double(seen),
                                     trainAccuracy: Double(correct) / Double(seen), testLoss: eval.loss,
                                     testAccuracy: eval.accuracy, testCorrect: eval.correct, testTotal: eval.total,
                                     imagesPerSecond: Double(seen) / trainSeconds, seconds: Date().timeIntervalSince(t0))
            if let bad = model.firstNonFiniteState() { throw TrainingError.nonFiniteState(epoch: epoch, tensor: bad.tensor, value: bad.value) }
            history.append(record)
            try saveCheckpoint(epoch: epoch, record: record)
            onEpoch?(record)
        }
        return resumed
    }

    func saveCheckpoint(epoch: Int, record: EpochRecord) throws {
        let historyJSON = String(data: try Trainer.sortedEncoder.encode(history), encoding: .utf8)!
        var opt = runMetadata
        opt["epoch"] = "\(epoch + 1)"
        opt["history"] = historyJSON
        try Checkpoint.save(model, directory: directory, metadata: [
            "epoch": "\(epoch + 1)", "dataset": datasetName,
            "test_accuracy": String(format: "%.2f", 100 * record.testAccuracy),
            "test_correct": "\(record.testCorrect)", "test_total": "\(record.testTotal)",
        ], optimizerMetadata: opt)
        try TrainingLog.writeCSV(history, to: (directory as NSString).appendingPathComponent("log.csv"))
        try TrainingLog.writeSVG(history, title: "\(model.config.summary) on \(datasetName)",
                                 to: (directory as NSString).appendingPathComponent("curves.svg"))
    }
}
