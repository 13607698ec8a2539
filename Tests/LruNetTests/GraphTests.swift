import XCTest
@testable import LruNet

/// The public network description: names, weight sharing, errors, and the general Reuse against
/// the fused block it must equal.
final class GraphTests: XCTestCase {
    /// A network that is none of the five: a stem, a plain 3x3 conv reused `n` times with its own
    /// BatchNorm per application and a residual, then a classifier.
    static func custom(n: Int, width: Int = 8) -> Sequential {
        Sequential {
            Sequential {
                Conv2d(1, width, kernelSize: 3, stride: 2, padding: 1, bias: false)
                BatchNorm2d(width)
                ReLU()
            }.named("stem")
            Reuse(times: n) { i in
                Residual(activation: .relu) {
                    Conv2d(width, width, kernelSize: 3, padding: 1, bias: false).named("conv")
                    BatchNorm2d(width).named("bn.\(i)")
                }.named("")
            }.named("block")
            GlobalAvgPool2d()
            Linear(width, 4).named("fc")
        }
    }

    func testNamesComeFromNamesAndPositions() throws {
        let net = try Network(Self.custom(n: 3), inputChannels: 1, classes: 4)
        let names = net.parameters.entries.map(\.name)
        XCTAssertEqual(names.filter { $0.hasPrefix("stem.") }, ["stem.0.weight", "stem.1.weight", "stem.1.bias", "stem.1.running_mean", "stem.1.running_var"])
        XCTAssertEqual(names.filter { $0.hasPrefix("block.conv") }, ["block.conv.weight"])        // one copy, shared
        XCTAssertEqual(Set(names.filter { $0.hasPrefix("block.bn.") && $0.hasSuffix(".weight") }), ["block.bn.0.weight", "block.bn.1.weight", "block.bn.2.weight"])
        XCTAssertEqual(names.filter { $0.hasPrefix("fc.") }, ["fc.weight", "fc.bias"])
        XCTAssertEqual(net.metadata["arch"], "custom")
        XCTAssertNil(net.config)
    }

    func testReuseCountsSharedAndUnrolledParametersAndFetches() throws {
        let n = 4, w = 8
        let net = try Network(Self.custom(n: n, width: w), inputChannels: 1, classes: 4)
        let cost = try net.costReport(height: 12, width: 12)
        let conv = w * w * 9, stem = w * 9, bn = 2 * w, fc = w * 4 + 4
        XCTAssertEqual(cost.parameters, stem + bn + conv + n * bn + fc)
        XCTAssertEqual(cost.unrolledParameters, cost.parameters + (n - 1) * conv)
        // Conv weights: the stem and the shared conv fetched once each, requested 1 + n times.
        XCTAssertEqual(cost.convBytesFetched, 4 * (stem + conv))
        XCTAssertEqual(cost.convBytesUnrolled, 4 * (stem + n * conv))
    }

    func testDescriptionErrorsAreThrownNotTrapped() {
        func error(_ m: some Module) -> String {
            do { _ = try Network(m, inputChannels: 1, classes: 2); return "built" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(Sequential { Conv2d(1, 6, kernelSize: 3, groups: 4) }).contains("groups 4 must divide 1 input and 6 output channels"))
        XCTAssertTrue(error(Sequential {
            Conv2d(1, 2, kernelSize: 1).named("a")
            Conv2d(2, 2, kernelSize: 1).named("a")
        }).contains("two modules declare 'a.weight'"))
        XCTAssertTrue(error(Reuse(times: 2) { i in Conv2d(2, 2, kernelSize: i + 1).named("c") }).contains("declare 'c.weight' as [2, 2, 1, 1] and as [2, 2, 2, 2]"))
        XCTAssertTrue(error(Reuse(times: 0) { _ in ReLU() }).contains("at least one application"))
        XCTAssertTrue(error(Sequential { Dropout(1) }).contains("dropout probability"))
        XCTAssertTrue(error(Sequential { ChannelShuffle(groups: 4, swapHalves: true) }).contains("swapHalves needs 2 groups"))
        // Shape errors surface when a plan is made for an input.
        XCTAssertThrowsError(try Network(Sequential { Conv2d(3, 2, kernelSize: 1); GlobalAvgPool2d() }, inputChannels: 1, classes: 2)(Tensor(zeros: [1, 1, 4, 4])))
    }

    /// The general Reuse, unrolled over one copy of the shared weights, against the fused block
    /// the paper's body selects: the same outputs on every kernel path, the same gradients.
    func testGeneralReuseEqualsTheFusedBlock() throws {
        let config = ModelConfig.lrunet(numClasses: 10, layerReuse: 3, inChannels: 1, dropout: 0)
        let fused = try Network(config: config, threading: Threading(threads: 2))
        let general = try Network(config: config, threading: Threading(threads: 2), selectsPatterns: false)
        XCTAssertFalse(fused.reuseBlocks.isEmpty)
        XCTAssertTrue(general.reuseBlocks.isEmpty)
        XCTAssertEqual(fused.parameters.entries.map(\.name).sorted(), general.parameters.entries.map(\.name).sorted())
        fused.initialise(seed: 9)
        var rng = SplitMix64(seed: 10)
        for e in fused.parameters.entries where e.role == .runningMean || e.role == .runningVar {
            let p = fused.parameters.values.pointer + e.offset
            for i in 0..<e.count { p[i] = e.role == .runningVar ? 0.5 + rng.nextUniform() : 0.2 * (2 * rng.nextUniform() - 1) }
        }
        for (name, t) in fused.stateDict() { try general.parameters.setValues(of: name, to: t) }
        let x = Tensor(shape: [3, 1, 28, 28], data: randomArray(3 * 784, &rng))
        try forEachKernelPath { path in
            assertClose(try general(x).data, try fused(x).data, atol: 1e-4, rtol: 1e-4, "inference, \(path)")
        }
        let lf = try fused.lossAndGradients(images: x, labels: [1, 5, 7])
        let lg = try general.lossAndGradients(images: x, labels: [1, 5, 7])
        XCTAssertEqual(lf, lg, accuracy: 1e-4 * abs(lf))
        for e in fused.parameters.entries where e.role.isTrainable {
            assertClose(general.parameters.gradient(of: e.name)!, fused.parameters.gradient(of: e.name)!, atol: 1e-4, rtol: 1e-3, e.name)
        }
    }

    /// Gradients of a shared weight sum over its applications: central differences agree.
    func testSharedWeightGradientByFiniteDifferences() throws {
        let net = try Network(Self.custom(n: 3, width: 4), inputChannels: 1, classes: 4, threading: Threading(threads: 1))
        net.initialise(seed: 2)
        var rng = SplitMix64(seed: 3)
        let x = Tensor(shape: [2, 1, 8, 8], data: randomArray(128, &rng)), labels = [1, 3]
        _ = try net.lossAndGradients(images: x, labels: labels)
        let analytic = net.parameters.gradient(of: "block.conv.weight")!
        let ref = net.parameters.ref(named: "block.conv.weight")!, p = net.parameters.pointer(ref)
        var a: [Float] = [], numeric: [Float] = []
        for i in stride(from: 0, to: analytic.count, by: 7) {
            let old = p[i], h: Float = 1e-2
            p[i] = old + h; let lp = try net.lossAndGradients(images: x, labels: labels)
            p[i] = old - h; let lm = try net.lossAndGradients(images: x, labels: labels)
            p[i] = old
            numeric.append(Float((lp - lm) / Double(2 * h))); a.append(analytic[i])
        }
        XCTAssertLessThan(relativeError(a, numeric), 0.02)
    }

    func testSaveAndLoadByName() throws {
        let a = try Network(Self.custom(n: 2), inputChannels: 1, classes: 4)
        a.initialise(seed: 4)
        let path = temporaryPath("custom.safetensors")
        try a.save(to: path)
        let b = try Network(Self.custom(n: 2), inputChannels: 1, classes: 4)
        try b.load(SafeTensorsFile(path: path))
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [2, 1, 10, 10], data: randomArray(200, &rng))
        XCTAssertEqual(try a(x).data, try b(x).data)
        // A description with another reuse count has other tensors: refused by name.
        let c = try Network(Self.custom(n: 3), inputChannels: 1, classes: 4)
        XCTAssertThrowsError(try c.load(SafeTensorsFile(path: path)))
    }
}
