import ArgumentParser
import Foundation
import LruNet

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from scratch with SGD, as the authors' main.py (LruNet by default, or --arch).",
        discussion: """
        SGD with momentum 0.9 and weight decay 5e-4, cross-entropy, Kaiming-normal (fan-out) init, \
        and the authors' augmentation: random crop with padding 4, rotation up to 10 degrees, \
        horizontal flip. The crop defaults to the input size; --crop-size 32 reproduces the \
        authors' 32x32 crop of 28x28 Fashion-MNIST.

        After every epoch it evaluates the test split and writes to --out: model.safetensors \
        (loadable by 'lrunet eval'), optimizer.safetensors (momentum, progress), log.csv and \
        curves.svg. Files are replaced atomically, so an interrupted run keeps its last epoch; \
        --resume continues it and ends with the same weights as an uninterrupted run (same seed, \
        same --threads). A NaN or infinite loss stops the run with the last good checkpoint kept.

        Examples (the first: 91.6% on Fashion-MNIST in about 6 min on 2 cores, see README):
          lrunet train --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2
          lrunet train --arch mobilenetv2 --width 0.25 --epochs 4 --out runs/mbv2
          lrunet train --arch shufflenet --width 0.5 --groups 3 --epochs 4 --out runs/shufflenet
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(help: "LruNet's N, times each block is applied.")
    var reuse: Int = 2
    @Option(help: ArgumentHelp("Output directory for checkpoints and logs.", valueName: "dir"))
    var out: String = "runs/train"
    @Flag(help: "Continue the run in --out from its last checkpoint.")
    var resume = false

    func validate() throws {
        guard reuse >= 1 && reuse <= 64 else { throw ValidationError("--reuse must be between 1 and 64") }
    }

    func run() throws {
        try reportingErrors {
            try Checkpoint.prepare(directory: out)       // before minutes of loading: can --out keep checkpoints?
            if resume && !Checkpoint.exists(directory: out) { print("no checkpoint in \(out) yet: starting the run from the beginning") }
            let (trainSet, testSet) = try flags.loadData()
            let config = flags.config(reuse: reuse, data: trainSet)
            let model = try Network(config: config, threading: Threading(threads: flags.threads))
            let o = flags.options
            let trainer = try Trainer(model: model, train: trainSet, test: testSet, options: o, directory: out,
                                      datasetName: flags.kind.rawValue)
            print("train \(config.summary) on \(flags.kind.rawValue): \(trainer.train.count) train / \(trainer.test.count) test images")
            print(flags.describeRun(o, train: trainSet, test: testSet, threads: model.threading.threads))
            let start = Date()
            try runTrainer(trainer, resume: resume)
            if let last = trainer.history.last {
                print(String(format: "done in %@: test accuracy %.2f%% (%d/%d); checkpoint %@/model.safetensors, log %@/log.csv, chart %@/curves.svg",
                             formatDuration(Date().timeIntervalSince(start)), 100 * last.testAccuracy, last.testCorrect, last.testTotal, out, out, out))
            }
        }
    }
}
