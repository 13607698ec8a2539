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

        Data-parallel on K processes (a build with --traits MPI, docs/distributed.md): each step's \
        --batch images are split across the processes, gradients are summed in one MPI_Allreduce per \
        step, and BatchNorm statistics are synchronised (--batch-norm per-process: each process \
        normalises its own share, as PyTorch DDP). Process 0 writes --out.

        Examples (the first: 91.6% on Fashion-MNIST in about 6 min on 2 cores, see README):
          lrunet train --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2
          mpirun -np 4 lrunet train --reuse 10 --batch 256 --out runs/lru10-4p
          lrunet train --arch mobilenetv2 --width 0.25 --epochs 4 --out runs/mbv2
          lrunet train --arch shufflenet --width 0.5 --groups 3 --epochs 4 --out runs/shufflenet
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(help: "LruNet's N, times each block is applied.")
    var reuse: Int = 2
    @Option(help: ArgumentHelp("Output directory for checkpoints and logs.", valueName: "dir"))
    var out: String = "runs/train"
    @Flag(help: "Continue the run in --out from its last checkpoint (on any number of processes).")
    var resume = false
    @Option(help: "Under mpirun: BatchNorm statistics 'synchronised' over all processes (the same step as one process) or 'per-process'.")
    var batchNorm: String = "synchronised"

    func validate() throws {
        guard reuse >= 1 && reuse <= 64 else { throw ValidationError("--reuse must be between 1 and 64") }
        guard ["synchronised", "per-process"].contains(batchNorm) else { throw ValidationError("--batch-norm must be synchronised or per-process") }
    }

    func run() throws {
        let group = try Processes.join()
        let lead = group.rank == 0
        try reportingErrors(in: group) {
            if lead { try Checkpoint.prepare(directory: out) }    // before minutes of loading: can --out keep checkpoints?
            if lead && resume && !Checkpoint.exists(directory: out) { print("no checkpoint in \(out) yet: starting the run from the beginning") }
            let (trainSet, testSet) = try flags.loadData()
            let config = flags.config(reuse: reuse, data: trainSet)
            let model = try Network(config: config, threading: Threading(threads: flags.threads))
            let o = flags.options
            let trainer = try Trainer(model: model, train: trainSet, test: testSet, options: o, directory: out,
                                      datasetName: flags.kind.rawValue)
            trainer.group = group
            trainer.synchronisedBatchNorm = batchNorm == "synchronised"
            if lead {
                print("train \(config.summary) on \(flags.kind.rawValue): \(trainer.train.count) train / \(trainer.test.count) test images")
                print(flags.describeRun(o, train: trainSet, test: testSet, threads: model.threading.threads))
                if group.isDistributed { print(Processes.describe(group, batch: o.batchSize, synchronised: trainer.synchronisedBatchNorm)) }
            }
            let start = Date()
            try runTrainer(trainer, resume: resume, quiet: !lead)
            if lead, let last = trainer.history.last {
                print(String(format: "done in %@: test accuracy %.2f%% (%d/%d); checkpoint %@/model.safetensors, log %@/log.csv, chart %@/curves.svg",
                             formatDuration(Date().timeIntervalSince(start)), 100 * last.testAccuracy, last.testCorrect, last.testTotal, out, out, out))
                if group.isDistributed { print(Processes.traffic(group)) }
            }
        }
        Processes.finish(group)
    }
}
