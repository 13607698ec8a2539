import XCTest
@testable import LruNet

/// The promises of docs/determinism.md, one test each, on every architecture.
final class DeterminismTests: XCTestCase {
    private func outcome(_ config: ModelConfig, threads: Int) throws -> Outcome {
        try Workload.run(Network(config: config, threading: Threading(threads: threads)))
    }

    private func inference(_ config: ModelConfig, threads: Int) throws -> [Float] {
        let net = try Network(config: config, threading: Threading(threads: threads))
        net.initialise(seed: 7)
        return try net(Workload.input(batch: 12, seed: 3).0).data
    }

    private func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    /// The same work on the same path and thread count gives the same bits.
    func testRepeatedRunsAreBitIdentical() throws {
        for config in Workload.configs {
            XCTAssertEqual(try outcome(config, threads: 2), try outcome(config, threads: 2), config.summary)
        }
    }

    /// Inference does not depend on the thread count: bit for bit for the four baselines (each
    /// output element is summed in the same order whoever computes it), and to float32 rounding
    /// for LruNet, whose reuse blocks run in tiles sized by the thread count.
    func testInferenceAcrossThreadCounts() throws {
        for config in Workload.configs {
            let one = try inference(config, threads: 1)
            for threads in [2, 3, manyThreads] {
                let other = try inference(config, threads: threads)
                if config.arch == .lrunet {
                    XCTAssertLessThanOrEqual(largestDifference(other, one), 1e-6, "\(config.summary), \(threads) threads")
                } else {
                    XCTAssertEqual(other, one, "\(config.summary), \(threads) threads")
                }
            }
        }
    }

    /// A large batch runs in chunks (``Network/inferenceChunk``): the chunks, an overlapping
    /// last one among them, give what one pass over the whole batch gives, to rounding.
    func testChunkedInferenceMatchesOnePass() throws {
        let x = Workload.input(batch: 35, seed: 9).0
        for config in Workload.configs {
            let net = try Network(config: config, threading: Threading(threads: 2))
            net.initialise(seed: 7)
            net.inferenceChunk = 35
            let whole = try net(x).data
            net.inferenceChunk = 16             // three chunks of 12 from images 0, 12 and 23
            let chunked = try net(x).data
            // To rounding: OpenBLAS (the stems, grouped convolutions) may block a GEMM by its width.
            XCTAssertLessThanOrEqual(largestDifference(chunked, whole), 1e-6, config.summary)
            XCTAssertEqual(chunked.count, whole.count)
            // Chosen: the activations of a chunk within the budget, at least the minimum of images.
            net.inferenceChunk = nil
            XCTAssertEqual(try net.chunkSize(ActivationShape(channels: 1, batch: 12, height: 28, width: 28)), 12)
            let chosen = try net.chunkSize(ActivationShape(channels: 1, batch: 100_000, height: 28, width: 28))
            XCTAssertEqual(net.plannedBatch, Network.inferenceChunkMinimum, "measured at the minimum")
            let perImage = net.activationBytes.arena / net.plannedBatch
            XCTAssertGreaterThanOrEqual(chosen, Network.inferenceChunkMinimum, config.summary)
            XCTAssertLessThanOrEqual(chosen * perImage, Network.inferenceChunkBytes, config.summary)
            XCTAssertGreaterThan((chosen + 1) * perImage, Network.inferenceChunkBytes, config.summary)
            // Equal passes, and the choice stays whatever was planned since.
            let batch = 2 * chosen + 3, passes = 3
            XCTAssertEqual(try net.imagesPerPass(ActivationShape(channels: 1, batch: batch, height: 28, width: 28)),
                           (batch + passes - 1) / passes, config.summary)
            XCTAssertLessThanOrEqual(largestDifference(try net(x).data, whole), 1e-6, config.summary)
            XCTAssertEqual(try net.chunkSize(ActivationShape(channels: 1, batch: 100_000, height: 28, width: 28)), chosen)
        }
    }

    /// The layers a network may run on one thread (``Network/tunesThreadsPerLayer``, from
    /// timings at plan time) give the same bits there as on all threads, whichever are picked.
    /// Batch 1 and 12 (at 12 the reused blocks' tiles hold fewer images on two threads than on one).
    func testLayersOnOneThreadGiveTheSameBits() throws {
        for config in Workload.configs { for batch in [1, 12] {
            let x = Workload.input(batch: batch, seed: 5).0
            let net = try Network(config: config, threading: Threading(threads: 2))
            net.tunesThreadsPerLayer = false
            net.initialise(seed: 7)
            let all = try net(x).data
            XCTAssertEqual(net.layersOnOneThread.count, 0, config.summary)
            var n = 0
            for pick in [{ (_: Layer) in true }, { _ in n += 1; return n % 2 == 0 }, { _ in n += 1; return n % 3 != 0 }] {
                net.runOnOneThread(pick)
                XCTAssertGreaterThan(net.layersOnOneThread.count, 0, config.summary)
                XCTAssertEqual(try net(x).data, all, "\(config.summary) batch \(batch)")
            }
            // The timing at plan time runs the leaf layers (reused blocks excepted) of a small pass.
            net.tunesThreadsPerLayer = true
            XCTAssertEqual(try net(x).data, all, config.summary)
            XCTAssertGreaterThan(net.layersOnOneThread.of, 0, config.summary)
        } }
    }

    /// A training step's loss and gradients across thread counts: equal to rounding (the loss to
    /// 1e-6; gradients to 1e-2 of the largest, since a max-pool or ReLU tie that rounding flips
    /// moves a gradient to another element). Runs are not bit-identical, so a resumed run must
    /// use the thread count it started with.
    func testTrainingStepAcrossThreadCounts() throws {
        let (x, y) = Workload.input(batch: 12, seed: 3)
        for config in Workload.configs {
            func gradients(_ threads: Int) throws -> (Double, [String: [Float]]) {
                let net = try Network(config: config, threading: Threading(threads: threads))
                net.initialise(seed: 7)
                let loss = try net.lossAndGradients(images: x, labels: y)
                var g: [String: [Float]] = [:]
                for e in net.parameters.entries where e.role.isTrainable { g[e.name] = net.parameters.gradient(of: e.name) }
                return (loss, g)
            }
            let (loss1, g1) = try gradients(1)
            let largest = g1.values.flatMap { $0 }.map { abs($0) }.max() ?? 0
            XCTAssertGreaterThan(largest, 0)
            for threads in [2, manyThreads] {
                let (loss, g) = try gradients(threads)
                XCTAssertEqual(loss, loss1, accuracy: 1e-6 * abs(loss1), "\(config.summary), \(threads) threads")
                for (name, a) in g1 {
                    let worst = zip(a, g[name]!).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 1e-2 * largest, "\(config.summary) \(name), \(threads) threads")
                }
            }
        }
    }

    /// Each instruction-set path gives the same inference to float32 rounding (they differ in
    /// FMA contraction and summation order), and is bit-identical with itself.
    func testInferenceAcrossInstructionSets() throws {
        let active = InstructionSet.active
        defer { try? InstructionSet.use(active) }
        for config in Workload.configs {
            let reference = try outcome(config, threads: 2)
            for set in InstructionSet.supported where set != active {
                try InstructionSet.use(set)
                let first = try outcome(config, threads: 2), second = try outcome(config, threads: 2)
                try InstructionSet.use(active)
                XCTAssertEqual(first, second, "\(config.summary) on \(set) is not repeatable")
                XCTAssertLessThanOrEqual(largestDifference(first.before, reference.before), 1e-5, "\(config.summary) on \(set)")
            }
        }
    }
}
