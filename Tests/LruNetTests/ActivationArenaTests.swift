import XCTest
@testable import LruNet

/// The inference activation arena: no two values alive at once share memory, and the arena
/// holds the peak of what is alive, not the sum.
final class ActivationArenaTests: XCTestCase {
    func testValuesAliveTogetherNeverOverlap() {
        var rng = SplitMix64(seed: 17)
        for _ in 0..<200 {
            let trace = ActivationTrace()
            var values: [ActivationTrace.Value] = [nil]
            for _ in 0..<(1 + Int(rng.next() % 30)) {
                // Read one to three earlier values (some long dead), produce one.
                let reads = (0..<(1 + Int(rng.next() % 3))).map { _ in values[Int(rng.next() % UInt64(values.count))] }
                values.append(trace.produce(count: 1 + Int(rng.next() % 5000), reading: reads) { _ in })
            }
            trace.useAtEnd(values.last!)
            let (offsets, count) = trace.place()
            let r = trace.requests
            for i in r.indices {
                XCTAssertLessThanOrEqual(offsets[i] + ActivationTrace.rounded(r[i].count), count)
                for j in r.indices where j > i && r[j].born <= r[i].lastUse {       // alive together
                    let disjoint = offsets[i] + ActivationTrace.rounded(r[i].count) <= offsets[j]
                        || offsets[j] + ActivationTrace.rounded(r[j].count) <= offsets[i]
                    XCTAssertTrue(disjoint, "requests \(i) and \(j) overlap while both are alive")
                }
            }
            XCTAssertLessThanOrEqual(count, trace.separateCount)
        }
    }

    /// lru10 at batch 256: the arena is the peak of what is alive at once (the stem's output
    /// while the first block writes its pooled output), well under the outputs' sum.
    func testLruNetInferenceHoldsThePeakNotTheSum() throws {
        let model = try Network(config: .lrunet(numClasses: 10, layerReuse: 10, inChannels: 1), threading: Threading(threads: 2))
        model.initialise(seed: 1)
        model.inferenceChunk = 256                          // one pass, not chunks
        _ = try model(Tensor(zeros: [256, 1, 28, 28]))
        let (arena, separate) = model.activationBytes
        let reported = try model.activationMemory(batch: 256, height: 28, width: 28)
        XCTAssertEqual(reported.arenaBytes, arena); XCTAssertEqual(reported.separateBytes, separate)
        XCTAssertEqual(reported.imagesPerPass, 256)
        // The same trace, measured independently: the largest sum of values alive at one step.
        let trace = ActivationTrace()
        trace.useAtEnd(model.inferenceGraph.trace(nil, trace))
        let steps = trace.requests.map(\.lastUse).max() ?? 0
        let peak = (1...steps).map { t in
            trace.requests.filter { $0.born <= t && t <= $0.lastUse }.reduce(0) { $0 + ActivationTrace.rounded($1.count) }
        }.max()! * MemoryLayout<Float>.size
        XCTAssertGreaterThanOrEqual(arena, peak)
        XCTAssertLessThanOrEqual(Double(arena), 1.1 * Double(peak), "first fit wastes more than 10% over the peak")
        XCTAssertLessThan(Double(arena), 0.7 * Double(separate), "arena \(arena) B vs separate \(separate) B")
        // A training plan keeps every output instead.
        _ = try model.lossAndGradients(images: Tensor(zeros: [2, 1, 28, 28]), labels: [0, 1])
        XCTAssertEqual(model.activationBytes.arena, 0)
    }

    /// A fork whose branches both end in a 1x1 convolution writing into the join: the left
    /// writes before the right branch runs, so the join's output is placed before the branches
    /// and stays apart from every buffer the right branch uses. (Placed at the join instead, it
    /// would land where the right branch's wide first output goes, over the left's rows.)
    func testBranchesWritingIntoTheJoinFindItsOutputIntact() throws {
        let description = Sequential {
            Conv2d(1, 8, kernelSize: 3, padding: 1, bias: false)
            BatchNorm2d(8)
            ReLU()
            Concat(.fork,
                   Sequential {
                       Conv2d(8, 8, kernelSize: 3, stride: 2, padding: 1, groups: 8, bias: false)
                       BatchNorm2d(8)
                       Conv2d(8, 8, kernelSize: 1, bias: false)
                       BatchNorm2d(8)
                       ReLU()
                   },
                   Sequential {
                       Conv2d(8, 64, kernelSize: 1, bias: false)
                       BatchNorm2d(64)
                       ReLU()
                       Conv2d(64, 64, kernelSize: 3, stride: 2, padding: 1, groups: 64, bias: false)
                       BatchNorm2d(64)
                       Conv2d(64, 8, kernelSize: 1, bias: false)
                       BatchNorm2d(8)
                       ReLU()
                   })
            ChannelShuffle(groups: 2)
            GlobalAvgPool2d()
            Linear(16, 10)
        }
        let model = try Network(description, inputChannels: 1, classes: 10)
        model.initialise(seed: 4)
        var rng = SplitMix64(seed: 12)
        for (batch, side) in [(3, 8), (2, 13)] {
            let x = Tensor(shape: [batch, 1, side, side], data: (0..<(batch * side * side)).map { _ in rng.nextUniform() })
            model.fusesLayers = true
            let fused = try model(x)
            XCTAssertEqual(model.fusions.filter { $0.rule == "branch written into the join" }.count, 2)
            model.fusesLayers = false
            let plain = try model(x)
            assertClose(fused.data, plain.data, atol: 1e-5, rtol: 1e-4, "batch \(batch), side \(side)")
        }
    }

    /// A reused block the tiles cannot run (24 planes) or whose planes are wider than 16 pools after
    /// its last iteration, its unpooled output held in the arena until the pool has read it: the
    /// logits equal those of the description's layers run one by one.
    func testBlocksThatPoolAfterTheirIterationsKeepTheUnpooledOutputInTheArena() throws {
        var rng = SplitMix64(seed: 41)
        for (planes, side) in [(24, 12), (32, 36)] {
            let description = Sequential {
                Conv2d(1, planes, kernelSize: 3, padding: 1, bias: false)
                BatchNorm2d(planes)
                ReLU()
                Reuse.lruNetBlock(planes: planes, times: 2)
                MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
                GlobalAvgPool2d()
                Linear(planes, 10)
            }
            let model = try Network(description, inputChannels: 1, classes: 10)
            model.initialise(seed: 8)
            let x = Tensor(shape: [3, 1, side, side], data: (0..<(3 * side * side)).map { _ in rng.nextUniform() })
            let fused = try model(x)
            XCTAssertEqual(model.fusions.map(\.rule).filter { $0 == "pooled block output" }.count, 1)
            let block = try XCTUnwrap(model.inferenceGraph.allLayers.compactMap { $0 as? ReuseBlock }.first)
            XCTAssertTrue(block.poolsOutput && !block.poolsInTiles, "planes \(planes), side \(side): pools after its iterations")
            model.fusesLayers = false
            let plain = try model(x)
            assertClose(fused.data, plain.data, atol: 1e-5, rtol: 1e-4, "planes \(planes), side \(side)")
        }
    }

    /// Training's input gradients share one arena: each lives from its layer's backward to the
    /// backward of the layer before. The gradients of the five architectures' parameters are the
    /// same bit for bit as with every layer's gradient in a buffer of its own (a kernel that
    /// accumulated into its input gradient, or read it after the layer before wrote, would differ).
    func testTrainingGradientsShareOneArena() throws {
        var rng = SplitMix64(seed: 29)
        for config in oneOfEachArchitecture {
            let side = config.inChannels == 1 ? 28 : 32, batch = 3
            let x = Tensor(shape: [batch, config.inChannels, side, side], data: (0..<(batch * config.inChannels * side * side)).map { _ in rng.nextUniform() })
            var grads: [[Float]] = []
            for places in [true, false] {
                let model = try Network(config: config, threading: Threading(threads: 2))
                model.initialise(seed: 5)
                model.placesGradients = places
                for _ in 0..<2 {         // the second step runs on the buffers the first left behind
                    _ = try model.lossAndGradients(images: x, labels: [1, 7, 3], seed: 9)
                }
                grads.append(Array(UnsafeBufferPointer(start: model.parameters.gradients.pointer, count: model.parameters.trainableCount)))
                if places {
                    let g = model.gradientBytes
                    XCTAssertGreaterThan(g.arena, 0)
                    XCTAssertLessThan(Double(g.arena), 0.6 * Double(g.separate), "\(config.summary): arena \(g.arena) B vs separate \(g.separate) B")
                } else {
                    XCTAssertEqual(model.gradientBytes.arena, 0)
                }
            }
            XCTAssertEqual(grads[0], grads[1], "\(config.summary): gradients differ with the arena")
            XCTAssertTrue(grads[0].contains { $0 != 0 })
        }
    }
}
