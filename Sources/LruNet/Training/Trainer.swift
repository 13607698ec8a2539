import Foundation

/// Everything that defines a training run.
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 10
    public var batchSize = 128
    public var learningRate: Float = 0.1
    public var schedule = ScheduleKind.cosine
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
    /// Hold out the last `validationSize` training images (before ``trainLimit``) and evaluate
    /// them after every epoch: the split for any model selection, so the test set is only reported.
    public var validationSize: Int?

    public init() {}

    public var lrSchedule: LearningRateSchedule {
        schedule == .step ? .authors : .cosine(warmupEpochs: warmupEpochs)
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
    /// Another process of a data-parallel run failed; its own message names the problem.
    case otherProcess(String)
    /// The processes of a data-parallel run no longer hold the same weights.
    case processesDiverged(epoch: Int)

    public var description: String {
        switch self {
        case let .diverged(e, s, l):
            return "loss became \(l.isNaN ? "NaN" : "\(l)") at epoch \(e + 1), step \(s + 1); stopped, the last good checkpoint is kept (try a lower --lr)"
        case let .nonFiniteState(e, tensor, v):
            return "'\(tensor)' became \(v) in epoch \(e + 1); stopped, the last good checkpoint is kept (try a lower --lr, or check the data)"
        case .resumeMismatch(let why): return "cannot resume: \(why)"
        case .otherProcess(let why): return "process 0 failed: \(why)"
        case .processesDiverged(let e):
            return "the processes' weights differ after epoch \(e + 1); stopped, the last good checkpoint is kept (a collective returned different sums on different processes)"
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
/// Every random choice derives from `(seed, epoch)` and an image's place in the epoch, so
/// `run(resume: true)` after an interruption continues from the last finished epoch and ends
/// with the same weights as an uninterrupted run with the same seed and thread count.
///
/// With a ``group`` of K processes (`mpirun -np K lrunet train`), each step's global batch of
/// ``TrainingOptions/batchSize`` images is split across them, and their gradients are summed
/// before every update, so all keep the same weights. With ``synchronisedBatchNorm`` (the
/// default) BatchNorm pools its statistics over the processes, and K processes compute the
/// step one process would, to rounding. Process 0 writes the checkpoints and logs.
public final class Trainer {
    public let model: Network
    public let train: LabeledImages
    public let test: LabeledImages
    /// The held-out end of the training set (``TrainingOptions/validationSize``), if any.
    public let validation: LabeledImages?
    public let options: TrainingOptions
    public let directory: String
    public let datasetName: String
    public private(set) var history: [EpochRecord] = []
    /// Called with a one-line note the user should see (a resume whose result will match the
    /// uninterrupted run only to rounding).
    public var onNote: ((String) -> Void)?
    /// The processes this run spans (``ProcessGroup/single`` by default).
    public var group = ProcessGroup.single
    /// Pool BatchNorm statistics over ``group`` (true), or let each process normalise with its
    /// own share of the batch, as PyTorch's DistributedDataParallel does by default (false).
    public var synchronisedBatchNorm = true

    public init(model: Network, train: LabeledImages, test: LabeledImages, options: TrainingOptions,
                directory: String, datasetName: String) throws {
        guard train.channels == model.inputChannels, test.channels == model.inputChannels else {
            throw ModelError.inputChannels(expected: model.inputChannels, got: train.channels)
        }
        guard options.epochs >= 1 else { throw ModelError.invalidConfig(field: "epochs", value: "\(options.epochs)", allowed: "at least 1") }
        guard options.batchSize >= 1 else { throw ModelError.invalidConfig(field: "batch size", value: "\(options.batchSize)", allowed: "at least 1") }
        self.model = model
        var train = train
        if let v = options.validationSize {
            guard v >= 1 && v < train.count else {
                throw ModelError.invalidConfig(field: "validation size", value: "\(v)", allowed: "1..<\(train.count) (the training images)")
            }
            validation = train.slice(train.count - v..<train.count)
            train = train.prefix(train.count - v)
        } else { validation = nil }
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
        return ["options": json, "dataset": datasetName, "threads": "\(model.threading.threads)", "processes": "\(group.size)",
                "batch_norm": synchronisedBatchNorm ? "synchronised" : "per-process"]
    }

    /// Runs the remaining epochs. With `resume`, first restores the checkpoint in `directory`
    /// (a directory without one starts a new run: resuming a run killed before its first
    /// checkpoint is starting it). Checks first that `directory` can hold checkpoints.
    /// - Returns: whether it continued a checkpoint.
    @discardableResult
    public func run(resume: Bool, onStep: ((StepProgress) -> Void)? = nil, onEpoch: ((EpochRecord) -> Void)? = nil) throws -> Bool {
        let k = group.size, b = options.batchSize
        if group.isDistributed && b < 2 * k {
            throw ModelError.invalidConfig(field: "batch size", value: "\(b)", allowed: "at least 2 per process (\(2 * k) for \(k) processes)")
        }
        if group.rank == 0 { try Checkpoint.prepare(directory: directory) }
        let resumed = try restore(resume: resume)
        let start = history.count
        if !resumed { model.initialise(seed: SeedStream.seed(options.seed, 0, 0)) }
        let aug = options.augmentation
        let side = aug.outputSide(train.height)
        // A data-parallel run drops a last step too small to give every process 2 images.
        let remainder = train.count % b
        let steps = train.count / b + (remainder > 0 && (!group.isDistributed || remainder >= 2 * k) ? 1 : 0)
        let imageIn = train.imageSize, imageOut = train.channels * side * side
        let local = (b + k - 1) / k
        let batchImages = FloatBuffer(count: local * imageOut)
        var batchLabels = [Int32](repeating: 0, count: local)

        for epoch in start..<options.epochs {
            let t0 = Date()
            let order = SeedStream.permutation(train.count, seed: SeedStream.seed(options.seed, epoch, 1))
            var lossSum = 0.0, correct = 0, seen = 0
            var lr = options.learningRate
            for step in 0..<steps {
                let n = min(b, train.count - step * b)
                let lo = n * group.rank / k, hi = n * (group.rank + 1) / k
                train.images.withUnsafeBufferPointer { src in
                    for i in lo..<hi {
                        let position = step * b + i, idx = order[position]
                        var rng = SplitMix64(seed: SeedStream.seed(options.seed, epoch, 2, position))
                        batchLabels[i - lo] = train.labels[idx]
                        aug.apply(src.baseAddress! + idx * imageIn, channels: train.channels, height: train.height, width: train.width,
                                  into: batchImages.pointer + (i - lo) * imageOut, rng: &rng)
                    }
                }
                lr = options.lrSchedule.rate(base: options.learningRate, epoch: Double(epoch) + Double(step) / Double(steps),
                                             totalEpochs: options.epochs)
                let share = BatchShare(group: group, firstImage: lo, globalBatch: n, synchronisedBatchNorm: synchronisedBatchNorm)
                let r = try batchLabels.withUnsafeBufferPointer { labels in
                    try model.trainStep(images: batchImages.pointer, labels: labels.baseAddress!, batch: hi - lo, channels: train.channels,
                                        height: side, width: side, optimizer: options.optimizer, learningRate: lr,
                                        seed: SeedStream.seed(options.seed, epoch, 3, step), share: share)
                }
                guard r.loss.isFinite else { throw TrainingError.diverged(epoch: epoch, step: step, loss: r.loss) }
                lossSum += r.loss * Double(hi - lo); correct += r.correct; seen += hi - lo
                onStep?(StepProgress(epoch: epoch, step: step, steps: steps, images: min((step + 1) * b, train.count),
                                     totalImages: train.count, runningLoss: lossSum / Double(seen),
                                     runningAccuracy: Double(correct) / Double(seen), learningRate: lr))
            }
            let totals = group.sum([lossSum, Double(correct), Double(seen)])
            let trainSeconds = Date().timeIntervalSince(t0)
            try agreeOnState(epoch: epoch)
            let eval = try evaluateShared(test)
            let held = try validation.map(evaluateShared)
            var record = EpochRecord(epoch: epoch, learningRate: lr, trainLoss: totals[0] / totals[2],
                                     trainAccuracy: totals[1] / totals[2], testLoss: eval.loss,
                                     testAccuracy: eval.accuracy, testCorrect: eval.correct, testTotal: eval.total,
                                     imagesPerSecond: totals[2] / trainSeconds, seconds: Date().timeIntervalSince(t0))
            record.validationLoss = held?.loss; record.validationAccuracy = held?.accuracy
            if let bad = model.firstNonFiniteState() { throw TrainingError.nonFiniteState(epoch: epoch, tensor: bad.tensor, value: bad.value) }
            history.append(record)
            if group.rank == 0 { try saveCheckpoint(epoch: epoch, record: record) }
            group.barrier()
            onEpoch?(record)
        }
        return resumed
    }

    /// With `resume`, restores the checkpoint in `directory` (a directory without one starts a
    /// new run: resuming a run killed before its first checkpoint is starting it). In a
    /// data-parallel run process 0 reads it and sends the state to the others, so only it
    /// needs the directory.
    private func restore(resume: Bool) throws -> Bool {
        var failure: Error?
        var resumed = false
        if group.rank == 0 {
            do { resumed = try restoreHere(resume: resume) } catch { failure = error }
        }
        guard group.isDistributed else {
            if let failure { throw failure }
            return resumed
        }
        let status = group.broadcast(Data((failure.map { "\($0)" } ?? (resumed ? "resumed" : "new")).utf8))
        let word = String(decoding: status, as: UTF8.self)
        if let failure { throw failure }
        guard word == "resumed" || word == "new" else { throw TrainingError.otherProcess(word) }
        guard word == "resumed" else { return false }
        let store = model.parameters
        group.broadcast(store.values.pointer, count: store.values.count)
        group.broadcast(store.momentum.pointer, count: store.momentum.count)
        let json = group.broadcast(try Trainer.sortedEncoder.encode(history))
        history = try JSONDecoder().decode([EpochRecord].self, from: json)
        return true
    }

    private func restoreHere(resume: Bool) throws -> Bool {
        guard resume && Checkpoint.exists(directory: directory) else { return false }
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
        if let was = opt["processes"].flatMap(Int.init), was != group.size {
            onNote?("this run started on \(was) process(es) and continues on \(group.size): its weights will match an uninterrupted run to rounding, not bit for bit (docs/distributed.md)")
        }
        history = try JSONDecoder().decode([EpochRecord].self, from: Data((opt["history"] ?? "[]").utf8))
        return true
    }

    /// After an epoch of a data-parallel run: running statistics averaged over the processes
    /// when each kept its own, then a check that all hold the same weights and momentum.
    private func agreeOnState(epoch: Int) throws {
        guard group.isDistributed else { return }
        let store = model.parameters
        if !synchronisedBatchNorm {
            let stats = store.values.pointer + store.gradients.count, count = store.values.count - store.gradients.count
            group.sum(stats, count: count, for: .bookkeeping)
            let scale = 1 / Float(group.size)
            for i in 0..<count { stats[i] *= scale }
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for buffer in [store.values, store.momentum] {
            UnsafeRawBufferPointer(start: buffer.pointer, count: 4 * buffer.count).forEach { hash = (hash ^ UInt64($0)) &* 0x100_0000_01b3 }
        }
        guard group.agree(hash) else { throw TrainingError.processesDiverged(epoch: epoch) }
    }

    /// A set's evaluation, each process taking an equal slice.
    private func evaluateShared(_ test: LabeledImages) throws -> EvaluationResult {
        guard group.isDistributed else { return try model.evaluate(test, batchSize: options.evalBatch) }
        let lo = test.count * group.rank / group.size, hi = test.count * (group.rank + 1) / group.size
        let part = try model.evaluate(test.slice(lo..<hi), batchSize: options.evalBatch)
        let t = group.sum([Double(part.correct), Double(part.total), part.loss * Double(part.total), part.seconds])
        return EvaluationResult(correct: Int(t[0]), total: Int(t[1]), seconds: t[3] / Double(group.size), logits: nil,
                                loss: t[1] > 0 ? t[2] / t[1] : 0)
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
        try TrainingLog.writeSVG(history, title: "\(model.summary) on \(datasetName)",
                                 to: (directory as NSString).appendingPathComponent("curves.svg"))
    }
}
