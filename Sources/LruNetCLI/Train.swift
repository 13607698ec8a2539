import ArgumentParser
import Foundation
import LruNet

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an LruNet from scratch with SGD, as the authors' main.py.",
        discussion: """
        SGD with momentum 0.9 and weight decay 5e-4, cross-entropy, Kaiming-normal (fan-out) init, \
        and the authors' augmentation: random crop with padding 4, rotation up to 10 degrees, \
        horizontal flip. The crop defaults to the input size; --crop-size 32 reproduces the \
        authors' 32x32 crop of 28x28 Fashion-MNIST.

        After every epoch it evaluates the test split and writes to --out: model.safetensors \
        (loadable by 'lrunet eval'), optimizer.safetensors (momentum, progress), log.csv and \
        curves.svg. Files are replaced atomically, so an interrupted run keeps its last epoch; \
        --resume continues it and ends with the same weights as an uninterrupted run (same seed, \
        same --threads).

        Example (about 91% on Fashion-MNIST, see README):
          lrunet train --dataset fashion-mnist --reuse 4 --epochs 6 --out runs/lru4
        """)

    @Option(help: "fashion-mnist, cifar10 or cifar100.")
    var dataset: String = "fashion-mnist"
    @Option(help: ArgumentHelp("Data set directory (default: the Fashion-MNIST Debian path).", valueName: "dir"))
    var data: String?
    @Option(help: "N, times each block is applied.")
    var reuse: Int = 4
    @Option(help: "Width multiplier, 1 or 2.")
    var width: Int = 1
    @Option(help: "Epochs to train.")
    var epochs: Int = 6
    @Option(help: "Images per step.")
    var batch: Int = 128
    @Option(help: "Peak learning rate.")
    var lr: Float = 0.1
    @Option(help: "Learning-rate schedule: step (x0.1 at 2/3 and 5/6 of the run, the authors') or cosine.")
    var schedule: String = "cosine"
    @Option(help: "Linear warm-up epochs (cosine schedule).")
    var warmup: Double = 0
    @Flag(help: "Nesterov momentum.")
    var nesterov = false
    @Option(help: "Dropout probability before the last classifier conv.")
    var dropout: Float = 0.5
    @Option(help: "Random seed for init, data order, augmentation and dropout.")
    var seed: UInt64 = 1
    @Option(help: ArgumentHelp("Output directory for checkpoints and logs.", valueName: "dir"))
    var out: String = "runs/train"
    @Flag(help: "Continue the run in --out from its last checkpoint.")
    var resume = false
    @Option(help: "Train on the first N training images only.")
    var limit: Int?
    @Option(help: "Evaluate on the first N test images only.")
    var testLimit: Int?
    @Option(help: "Training crop side (default: the input size; 32 is the authors' choice for Fashion-MNIST).")
    var cropSize: Int?
    @Flag(help: "Turn off augmentation.")
    var noAugment = false
    @Option(help: "Threads (0 = all cores).")
    var threads: Int = 0

    func validate() throws {
        guard DatasetKind(name: dataset) != nil else { throw ValidationError("--dataset must be fashion-mnist, cifar10 or cifar100") }
        guard reuse >= 1 && reuse <= 64 else { throw ValidationError("--reuse must be between 1 and 64") }
        guard width == 1 || width == 2 else { throw ValidationError("--width must be 1 or 2") }
        guard epochs >= 1 && epochs <= 10_000 else { throw ValidationError("--epochs must be between 1 and 10000") }
        guard batch >= 2 && batch <= 4096 else { throw ValidationError("--batch must be between 2 and 4096 (BatchNorm needs 2)") }
        guard lr > 0 && lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard ["step", "cosine"].contains(schedule) else { throw ValidationError("--schedule must be step or cosine") }
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1)") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
        if let cropSize, cropSize < 8 || cropSize > 64 { throw ValidationError("--crop-size must be between 8 and 64") }
        guard threads >= 0 && threads <= 256 else { throw ValidationError("--threads must be between 0 and 256") }
    }

    func run() throws {
        try reportingErrors {
            let kind = DatasetKind(name: dataset)!
            guard let dir = data ?? kind.defaultDirectory else {
                throw ValidationError("\(kind.rawValue) has no default location; pass --data DIR with the official binary files")
            }
            let trainSet = try kind.load(directory: dir, split: .train)
            let testSet = try kind.load(directory: dir, split: .test)
            let config = LruNetConfig(numClasses: trainSet.numClasses, widthMult: width, layerReuse: reuse,
                                      inChannels: trainSet.channels, dropout: dropout)
            let model = try LruNet(config: config, threading: Threading(threads: threads))
            var o = TrainingOptions()
            o.epochs = epochs; o.batchSize = batch; o.learningRate = lr; o.schedule = schedule; o.warmupEpochs = warmup
            o.nesterov = nesterov; o.seed = seed; o.trainLimit = limit; o.testLimit = testLimit
            o.augment = !noAugment; o.cropSize = cropSize
            let trainer = try Trainer(model: model, train: trainSet, test: testSet, options: o, directory: out,
                                      datasetName: kind.rawValue)
            let side = o.augmentation.outputSide(trainSet.height)
            print("train \(describe(config)) on \(kind.rawValue): \(trainer.train.count) train / \(trainer.test.count) test images")
            print("SGD lr \(lr) (\(schedule)\(warmup > 0 ? ", warm-up \(warmup)" : "")), momentum 0.9\(nesterov ? " nesterov" : ""), weight decay 5e-4, batch \(batch), \(epochs) epochs, seed \(seed), \(model.threading.threads) thread(s)")
            print(o.augment ? "augmentation: random crop \(side)x\(side) (padding 4) from \(trainSet.height)x\(trainSet.width), rotation +-10 deg, horizontal flip; test on \(testSet.height)x\(testSet.width)"
                            : "augmentation: none")
            let start = Date()
            var bar: ProgressBar?
            try trainer.run(resume: resume, onStep: { p in
                if p.step == 0 { bar = ProgressBar(total: p.totalImages, label: "epoch \(p.epoch + 1)/\(o.epochs)") }
                bar?.update(p.images, extra: String(format: "loss %.4f acc %.2f%% lr %.4g", p.runningLoss, 100 * p.runningAccuracy, p.learningRate))
            }, onEpoch: { r in
                print(String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%% (%d/%d)  %.0f img/s  %.0fs",
                             r.epoch + 1, o.epochs, r.trainLoss, 100 * r.trainAccuracy, r.testLoss, 100 * r.testAccuracy,
                             r.testCorrect, r.testTotal, r.imagesPerSecond, r.seconds))
                fflush(stdout)
            })
            if let last = trainer.history.last {
                print(String(format: "done in %@: test accuracy %.2f%% (%d/%d); checkpoint %@/model.safetensors, log %@/log.csv, chart %@/curves.svg",
                             formatDuration(Date().timeIntervalSince(start)), 100 * last.testAccuracy, last.testCorrect, last.testTotal, out, out, out))
            }
        }
    }
}
