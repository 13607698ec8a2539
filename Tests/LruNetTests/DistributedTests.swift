import XCTest
import Foundation
@testable import LruNet

/// Data-parallel training, with K "processes" as threads of this process (ThreadCollectives:
/// the same trainer and kernels as an MPI run, with in-process sums; `make test-mpi` runs the
/// real thing under mpirun). With synchronised BatchNorm, K processes end where one process
/// with the same global batch ends, to rounding; every process holds the same weights.
final class DistributedTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "lrunet-distributed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func images(_ count: Int, seed: UInt64) -> LabeledImages {
        var rng = SplitMix64(seed: seed)
        // Learnable: the label brightens one band of rows, so accuracy moves off chance.
        var pixels = randomArray(count * 28 * 28, &rng, scale: 0.5)
        let labels = (0..<count).map { _ in Int32(rng.nextInt(10)) }
        for i in 0..<count { for p in 0..<56 { pixels[i * 784 + Int(labels[i]) * 56 + p] += 1 } }
        return LabeledImages(images: pixels, labels: labels, channels: 1, height: 28, width: 28, numClasses: 10)
    }

    private func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 2; o.batchSize = 32; o.seed = 7; o.learningRate = 0.001; o.rotationDegrees = 5; 
        return o
    }

    private struct Run { let weights: [[Float]]; let history: [EpochRecord]; let trainers: [Trainer] }

    /// Trains `config` on `processes` threads, each its own network and trainer.
    private func train(_ config: ModelConfig, processes: Int, threads: Int = 1, synchronised: Bool = true, epochs: Int = 2,
                       resume: Bool = false, into dir: String, keepEpoch1 copy: String? = nil) throws -> Run {
        try train({ try Network(config: config, threading: Threading(threads: $0)) }, processes: processes, threads: threads,
                  synchronised: synchronised, epochs: epochs, resume: resume, into: dir, keepEpoch1: copy)
    }

    /// Trains the networks `make` builds (given a thread count) on `processes` threads.
    private func train(_ make: (Int) throws -> Network, processes: Int, threads: Int = 1, synchronised: Bool = true, epochs: Int = 2,
                       resume: Bool = false, into dir: String, keepEpoch1 copy: String? = nil) throws -> Run {
        let groups = ThreadCollectives.group(size: processes)
        let train = images(64, seed: 1), test = images(40, seed: 2)
        var o = options()
        o.epochs = epochs
        let trainers = try groups.map { g -> Trainer in
            let t = try Trainer(model: make(threads), train: train, test: test,
                                options: o, directory: dir, datasetName: "synthetic")
            t.group = g
            t.synchronisedBatchNorm = synchronised
            return t
        }
        let errors = ErrorBox()
        let done = DispatchGroup()
        for t in trainers {
            done.enter()
            let box = Unchecked(t)      // each trainer runs on its own thread only
            let thread = Thread {
                do {
                    try box.value.run(resume: resume, onEpoch: { r in
                        // A copy of the checkpoint after epoch 1: the run as if killed then.
                        if r.epoch == 0, let copy, box.value.group.rank == 0 { try? FileManager.default.copyItem(atPath: dir, toPath: copy) }
                    })
                } catch { errors.add(error) }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        if let e = errors.first { throw e }
        return Run(weights: trainers.map { $0.model.parameters.values.array }, history: trainers[0].history, trainers: trainers)
    }

    /// The largest difference of any trainable weight, relative to the largest weight of its tensor.
    private func largestRelativeDifference(_ a: [Float], _ b: [Float], _ store: ParameterStore) -> Float {
        var worst: Float = 0
        for e in store.entries where e.role == .convWeight || e.role == .linearWeight || e.role == .bnWeight {
            let x = a[e.offset ..< e.offset + e.count], y = b[e.offset ..< e.offset + e.count]
            let scale = y.map(abs).max()!
            worst = max(worst, zip(x, y).map { abs($0 - $1) }.max()! / scale)
        }
        return worst
    }

    /// "Within float32 rounding": no further from the 1-process run than the same 1-process run
    /// on 2 threads is (the engine's own rounding, summation order) or 1e-5, whichever is larger.
    private func checkEquivalence(_ config: ModelConfig, name: String) throws {
        let one = try train(config, processes: 1, into: directory + "/\(name)-1")
        let store = one.trainers[0].model.parameters
        let floor = largestRelativeDifference(try train(config, processes: 1, threads: 2, into: directory + "/\(name)-t2").weights[0],
                                              one.weights[0], store)
        let two = try train(config, processes: 2, into: directory + "/\(name)-2")
        XCTAssertEqual(two.weights[0], two.weights[1], "\(name): the two processes' weights differ")
        let d = largestRelativeDifference(two.weights[0], one.weights[0], store)
        let bound = max(10 * floor, 1e-5)
        // The measure can fail: per-process statistics (half the batch each) move the weights visibly.
        let local = try train(config, processes: 2, synchronised: false, into: directory + "/\(name)-local")
        let dLocal = largestRelativeDifference(local.weights[0], one.weights[0], store)
        print("\(name), 2 epochs (4 steps of 32): 2 processes vs 1, largest relative weight difference \(d) " +
              "(1 process on 2 threads vs 1: \(floor); per-process BatchNorm: \(dLocal))")
        XCTAssertLessThanOrEqual(d, bound, name)
        XCTAssertEqual(two.history.map(\.testCorrect), one.history.map(\.testCorrect), name)
        XCTAssertEqual(two.history.last!.trainLoss, one.history.last!.trainLoss, accuracy: 1e-4 * one.history.last!.trainLoss, name)
        XCTAssertEqual(local.weights[0], local.weights[1], "\(name): per-process BatchNorm must still keep the weights equal")
        XCTAssertGreaterThan(dLocal, 10 * bound, name)
        // Only process 0 writes.
        XCTAssertTrue(Checkpoint.exists(directory: directory + "/\(name)-2"))
    }

    func testTwoProcessesMatchOneProcessLruNet() throws {
        try checkEquivalence(ModelConfig(arch: .lrunet, numClasses: 10, layerReuse: 3, inChannels: 1), name: "lrunet N=3")
    }

    /// One step from the same weights, every architecture: the 2-process gradient (summed) is the
    /// 1-process one to rounding; without the sum it is visibly not (the planted fault). The
    /// baselines' gradients move with the rounding of their BatchNorm statistics (ReLU and
    /// max-pool ties flip), so "to rounding" is measured: as far as the 1-process gradient is
    /// from itself with the batch's images in reverse order (dropout is off, so that the order
    /// changes nothing else). The images are noise with a learnable band: real images have
    /// regions of exactly equal values, where a split batch can flip which of two equal values
    /// wins a max-pool window (docs/distributed.md).
    func testOneStepGradientsMatchOneProcessEveryArchitecture() throws {
        let configs = [ModelConfig(arch: .lrunet, numClasses: 10, layerReuse: 3, inChannels: 1, dropout: 0),
                       ModelConfig(arch: .mobilenet, numClasses: 10, widthMult: 0.25, inChannels: 1, dropout: 0),
                       ModelConfig(arch: .mobilenetv2, numClasses: 10, widthMult: 0.25, inChannels: 1, dropout: 0),
                       ModelConfig(arch: .shufflenet, numClasses: 10, widthMult: 0.5, groups: 3, inChannels: 1),
                       ModelConfig(arch: .shufflenetv2, numClasses: 10, widthMult: 0.5, inChannels: 1)]
        let data = images(24, seed: 3)
        let sgd = SGD(momentum: 0.9, weightDecay: 0, nesterov: false)   // after one step, momentum = gradient
        @Sendable func step(_ net: Network, _ order: [Int], _ share: BatchShare?) throws {
            let x = order.flatMap { data.images[$0 * 784 ..< ($0 + 1) * 784] }, y = order.map { data.labels[$0] }
            _ = try x.withUnsafeBufferPointer { xp in try y.withUnsafeBufferPointer { yp in
                try net.trainStep(images: xp.baseAddress!, labels: yp.baseAddress!, batch: order.count, channels: 1, height: 28, width: 28,
                                  optimizer: sgd, learningRate: 0, seed: 11, share: share)
            } }
        }
        func gradient(_ config: ModelConfig, _ order: [Int]) throws -> [Float] {
            let net = try Network(config: config, threading: Threading(threads: 1))
            net.initialise(seed: 4)
            try step(net, order, nil)
            return net.parameters.momentum.array
        }
        for config in configs {
            let reference = try gradient(config, Array(0..<24))
            let largest = reference.map(abs).max()!
            func distance(_ g: [Float]) -> Float { zip(g, reference).map { abs($0 - $1) }.max()! / largest }
            let floor = distance(try gradient(config, Array((0..<24).reversed())))
            let bound = max(4 * floor, 1e-5)
            for summed in [true, false] {
                let groups = ThreadCollectives.group(size: 2)
                let nets = try groups.map { _ in try Network(config: config, threading: Threading(threads: 1)) }
                for n in nets { n.initialise(seed: 4) }
                let box = Unchecked((nets, groups)), errors = ErrorBox(), done = DispatchGroup()
                for r in 0..<2 {
                    done.enter()
                    Thread {
                        let (nets, groups) = box.value
                        // The planted fault: each process updates with its own half's gradient.
                        let share = BatchShare(group: summed ? groups[r] : .single, firstImage: 12 * r, globalBatch: 24,
                                               synchronisedBatchNorm: summed)
                        do { try step(nets[r], Array(12 * r ..< 12 * r + 12), share) } catch { errors.add(error) }
                        done.leave()
                    }.start()
                }
                done.wait()
                if let e = errors.first { throw e }
                let d = distance(nets[0].parameters.momentum.array)
                if summed {
                    print("\(config.summary): one step on 2 processes vs 1, largest gradient difference \(d) of the largest " +
                          "(1 process, images reversed: \(floor))")
                    XCTAssertLessThanOrEqual(d, bound, config.summary)
                    XCTAssertEqual(nets[0].parameters.momentum.array, nets[1].parameters.momentum.array, config.summary)
                } else {
                    XCTAssertGreaterThan(d, 10 * bound, "\(config.summary): an unreduced gradient must be caught")
                }
            }
        }
    }

    /// A 2-process run stopped after epoch 1 and resumed on 1 process ends where the
    /// uninterrupted 2-process run ends, to rounding; and a 1-process checkpoint resumes on 2.
    /// A network of the user's own description (a plain conv reused 3 times with a BatchNorm per
    /// application) trains on two processes as on one, and resumes from its checkpoint.
    func testCustomReusedNetworkTrainsDistributedAndResumes() throws {
        let description = Sequential {
            Sequential { Conv2d(1, 8, kernelSize: 3, stride: 2, padding: 1, bias: false); BatchNorm2d(8); ReLU() }.named("stem")
            Reuse(times: 3) { i in
                Residual(activation: .relu) {
                    Conv2d(8, 8, kernelSize: 3, padding: 1, bias: false).named("conv")
                    BatchNorm2d(8).named("bn.\(i)")
                }.named("")
            }.named("block")
            GlobalAvgPool2d()
            Linear(8, 10).named("fc")
        }
        let make = { (threads: Int) in try Network(description, inputChannels: 1, classes: 10, threading: Threading(threads: threads)) }
        let one = try train(make, processes: 1, into: directory + "/custom-1", keepEpoch1: directory + "/custom-resume")
        let two = try train(make, processes: 2, into: directory + "/custom-2")
        XCTAssertEqual(two.weights[0], two.weights[1], "the two processes' weights differ")
        let store = one.trainers[0].model.parameters
        XCTAssertLessThan(largestRelativeDifference(two.weights[0], one.weights[0], store), 1e-4)
        XCTAssertEqual(two.history.map(\.testCorrect), one.history.map(\.testCorrect))
        // Killed after epoch 1 (the copy), resumed: the uninterrupted run's weights, bit for bit.
        let resumed = try train(make, processes: 1, resume: true, into: directory + "/custom-resume")
        XCTAssertEqual(resumed.history.count, 2)
        XCTAssertEqual(resumed.weights[0], one.weights[0])
        let file = try SafeTensorsFile(path: directory + "/custom-resume/model.safetensors")
        XCTAssertEqual(file.metadata["arch"], "custom")
        XCTAssertNotNil(file.tensors["block.conv.weight"])
    }

    func testResumeOnAnotherProcessCount() throws {
        let config = ModelConfig(arch: .lrunet, numClasses: 10, layerReuse: 2, inChannels: 1)
        let whole = try train(config, processes: 2, into: directory + "/whole", keepEpoch1: directory + "/split")
        let resumed = try train(config, processes: 1, resume: true, into: directory + "/split")
        XCTAssertEqual(resumed.history.count, 2)
        let store = resumed.trainers[0].model.parameters
        XCTAssertLessThan(largestRelativeDifference(resumed.weights[0], whole.weights[0], store), 1e-5)
        let single = try train(config, processes: 1, into: directory + "/single", keepEpoch1: directory + "/other")
        let grown = try train(config, processes: 2, resume: true, into: directory + "/other")
        XCTAssertEqual(grown.weights[0], grown.weights[1])
        XCTAssertLessThan(largestRelativeDifference(grown.weights[0], single.weights[0], store), 1e-5)
    }

    /// Every step sums the gradients in one call over the whole arena.
    func testOneGradientSumPerStep() throws {
        let config = ModelConfig(arch: .shufflenetv2, numClasses: 10, widthMult: 0.5, inChannels: 1)
        let run = try train(config, processes: 2, epochs: 1, into: directory + "/traffic")
        let g = run.trainers[0].group.gradientTraffic
        XCTAssertEqual(g.calls, 2)      // 64 images, batch 32
        XCTAssertEqual(g.bytes, 2 * 4 * run.trainers[0].model.parameters.gradients.count)
        XCTAssertGreaterThan(run.trainers[0].group.batchNormTraffic.calls, 0)
    }
}

private struct Unchecked<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }

private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func add(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
    var first: Error? { lock.lock(); defer { lock.unlock() }; return errors.first }
}
