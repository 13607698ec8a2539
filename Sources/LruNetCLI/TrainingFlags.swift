import ArgumentParser
import Foundation
import LruNet

/// The flags `train` and `sweep` share: data, schedule, optimiser, augmentation.
struct TrainingFlags: ParsableArguments {
    @Option(help: "fashion-mnist, cifar10 or cifar100.")
    var dataset: String = "fashion-mnist"
    @Option(help: ArgumentHelp("Data set directory (default: the Fashion-MNIST Debian path).", valueName: "dir"))
    var data: String?
    @Option(help: ArgumentHelp("Architecture: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var arch: String = "lrunet"
    @Option(help: "Width multiplier: 1 or 2 for lrunet; e.g. 0.25, 0.4, 0.5, 0.75, 1 for the others.")
    var width: Double = 1
    @Option(help: "ShuffleNet's groups (3 or 8).")
    var groups: Int = 3
    @Option(help: "Epochs to train.")
    var epochs: Int = 6
    @Option(help: "Images per step.")
    var batch: Int = 128
    @Option(help: "Peak learning rate.")
    var lr: Float = 0.1
    @Option(help: "Learning-rate schedule: step (x0.1 at 2/3 and 5/6 of the run, the authors') or cosine.")
    var schedule: ScheduleKind = .cosine
    @Option(help: "Linear warm-up epochs (cosine schedule).")
    var warmup: Double = 0
    @Flag(help: "Nesterov momentum.")
    var nesterov = false
    @Option(help: "Dropout before the classifier (default: the architecture's, 0.5 for lrunet, 0.2 for the MobileNets, none for the ShuffleNets).")
    var dropout: Float?
    @Option(help: "Random seed for init, data order, augmentation and dropout.")
    var seed: UInt64 = 1
    @Option(help: "Train on the first N training images only.")
    var limit: Int?
    @Option(help: "Evaluate on the first N test images only.")
    var testLimit: Int?
    @Option(help: "Training crop side (default: the input size; 32 is the authors' choice for Fashion-MNIST).")
    var cropSize: Int?
    @Option(help: "Largest random rotation in degrees (the authors' 10; 0 turns it off).")
    var rotation: Float = 10
    @Flag(help: "Turn off augmentation.")
    var noAugment = false
    @Option(help: "Threads (0 = all cores).")
    var threads: Int = 0
    @Option(help: ArgumentHelp("A whole recipe, over the flags above: authors (their main.py: crop 32, rotation 10, flip, batch 256, lr 0.1 with x0.1 at 2/3 and 5/6, dropout 0.5) or plain (the same without augmentation).", valueName: "name"))
    var recipe: Recipe?
    @Option(help: ArgumentHelp("Hold out the last N training images and report their accuracy every epoch.", valueName: "n"))
    var validation: Int?

    func validate() throws {
        guard DatasetKind(name: dataset) != nil else { throw ValidationError("--dataset must be fashion-mnist, cifar10 or cifar100") }
        guard let a = Architecture(rawValue: arch) else {
            throw ValidationError("--arch must be one of \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do { try ModelConfig(arch: a, widthMult: width, groups: groups, dropout: dropout).validate() }
        catch { throw ValidationError("\(error)") }
        guard epochs >= 1 && epochs <= 10_000 else { throw ValidationError("--epochs must be between 1 and 10000") }
        guard batch >= 2 && batch <= 4096 else { throw ValidationError("--batch must be between 2 and 4096 (BatchNorm needs 2)") }
        guard lr > 0 && lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
        if let cropSize, cropSize < 8 || cropSize > 64 { throw ValidationError("--crop-size must be between 8 and 64") }
        guard rotation >= 0 && rotation <= 180 else { throw ValidationError("--rotation must be between 0 and 180 degrees") }
        guard threads >= 0 && threads <= 256 else { throw ValidationError("--threads must be between 0 and 256") }
    }

    var kind: DatasetKind { DatasetKind(name: dataset)! }

    func loadData() throws -> (train: LabeledImages, test: LabeledImages) {
        guard let dir = data ?? kind.defaultDirectory else {
            throw ValidationError("\(kind.rawValue) has no default location; pass --data DIR with the official binary files")
        }
        return (try kind.load(directory: dir, split: .train), try kind.load(directory: dir, split: .test))
    }

    var options: TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batchSize = batch; o.learningRate = lr; o.schedule = schedule; o.warmupEpochs = warmup
        o.nesterov = nesterov; o.seed = seed; o.trainLimit = limit; o.testLimit = testLimit
        o.augment = !noAugment; o.cropSize = cropSize; o.rotationDegrees = rotation
        o.validationSize = validation
        recipe?.apply(to: &o)
        return o
    }

    func config(reuse: Int, data: LabeledImages) -> ModelConfig {
        ModelConfig(arch: Architecture(rawValue: arch)!, numClasses: data.numClasses, widthMult: width, layerReuse: reuse,
                    groups: groups, inChannels: data.channels, dropout: dropout ?? recipe?.dropout)
    }

    /// The run's settings, printed before training.
    func describeRun(_ o: TrainingOptions, train: LabeledImages, test: LabeledImages, threads: Int) -> String {
        let side = o.augmentation.outputSide(train.height)
        let aug = o.augment
            ? "random crop \(side)x\(side) (padding 4) from \(train.height)x\(train.width), rotation +-\(o.rotationDegrees) deg, horizontal flip; test on \(test.height)x\(test.width)"
            : "none"
        return """
        \(recipe.map { "recipe \($0.rawValue): " } ?? "")SGD lr \(o.learningRate) (\(o.schedule)\(o.warmupEpochs > 0 ? ", warm-up \(o.warmupEpochs)" : "")), momentum 0.9\(o.nesterov ? " nesterov" : ""), weight decay 5e-4, \
        batch \(o.batchSize), \(o.epochs) epochs, seed \(o.seed), \(threads) thread(s)
        augmentation: \(aug)
        """
    }
}

/// Trains with a progress bar per epoch and a line per finished epoch.
func runTrainer(_ trainer: Trainer, resume: Bool, label: String = "", quiet: Bool = false) throws {
    var bar: ProgressBar?
    let epochs = trainer.options.epochs
    trainer.onNote = { print("note: \($0)") }
    if quiet { return _ = try trainer.run(resume: resume) }
    try trainer.run(resume: resume, onStep: { p in
        if p.step == 0 { bar = ProgressBar(total: p.totalImages, label: "\(label)epoch \(p.epoch + 1)/\(epochs)") }
        bar?.update(p.images, extra: String(format: "loss %.4f acc %.2f%% lr %.4g", p.runningLoss, 100 * p.runningAccuracy, p.learningRate))
    }, onEpoch: { r in
        print(String(format: "%@epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%% (%d/%d)  %.0f img/s  %.0fs",
                     label, r.epoch + 1, epochs, r.trainLoss, 100 * r.trainAccuracy, r.testLoss, 100 * r.testAccuracy,
                     r.testCorrect, r.testTotal, r.imagesPerSecond, r.seconds))
        fflush(nil)     // all streams: `stdout` is a C global Swift 6 will not read from here
    })
}

extension ScheduleKind: ExpressibleByArgument {}
extension Recipe: ExpressibleByArgument {}
