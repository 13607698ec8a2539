import XCTest
@testable import LruNet

/// Every layer's backward pass against central finite differences of the loss
/// L = sum(r * forward(x)) for a fixed random r.
///
/// Tolerances: float32 forward passes make a difference quotient with step h
/// accurate to about 1e-7 * |L| / h, while a larger h lets ReLU inputs cross zero.
/// h = 1e-3 balances the two; the comparison is the norm of the error over a
/// sample of entries relative to the norm of the gradients (robust to the odd
/// kink), below 3% per tensor. A wrong gradient (a dropped term, an unsummed
/// reuse iteration) is off by tens of percent. Gradients that are truly zero
/// (a BatchNorm bias followed by another training-mode BatchNorm) are compared
/// against an absolute floor of 1e-2 RMS, the float32 noise of the quotient.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    let diff = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
    let size = zip(a, b).map { $0 * $0 + $1 * $1 }.reduce(0, +).squareRoot()
    return diff / max(size, 1e-2 * Float(a.count).squareRoot() / 0.03)
}

/// One layer (or container) with its parameters and an input shape.
struct LayerCase {
    let store: ParameterStore
    let layer: Layer
    let input: ActivationShape
}

/// Checks d/dx and d/d(every trainable parameter) of one layer in training mode.
func checkGradients(_ c: LayerCase, seed: UInt64 = 7, h: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) throws {
    var rng = SplitMix64(seed: seed)
    if !c.store.isSealed { c.store.seal() }
    for e in c.store.entries where e.role.isTrainable {
        let p = c.store.values.pointer + e.offset
        for i in 0..<e.count { p[i] = 0.5 * (2 * rng.nextUniform() - 1) + (e.role == .bnWeight ? 1 : 0) }
    }
    let ctx = RunContext(training: true, threading: Threading(threads: 2), cache: ParameterCache(store: c.store))
    let outShape = try c.layer.plan(input: c.input, training: true)
    let x = FloatBuffer(count: c.input.count)      // a buffer, not an array: perturbed in place while read
    x.pointer.update(from: randomArray(c.input.count, &rng), count: c.input.count)
    let r = randomArray(outShape.count, &rng)
    func loss() -> Double {
        ctx.rng = SplitMix64(seed: 99)                    // same dropout mask every time
        ctx.cache.beginPass()
        let y = c.layer.forward(x.pointer, ctx)
        var s: Double = 0
        for i in 0..<outShape.count { s += Double(r[i]) * Double(y[i]) }
        return s
    }
    _ = loss()
    c.store.gradients.zero()
    var gy = r
    let gx = gy.withUnsafeMutableBufferPointer { c.layer.backward($0.baseAddress!, needInputGradient: true, ctx) }!
    let analyticX = Array(UnsafeBufferPointer(start: gx, count: c.input.count))
    let analyticP = c.store.gradients.array

    func numeric(_ ptr: UnsafeMutablePointer<Float>, _ i: Int) -> Float {
        let old = ptr[i]
        ptr[i] = old + h; let lp = loss()
        ptr[i] = old - h; let lm = loss()
        ptr[i] = old
        return Float((lp - lm) / Double(2 * h))
    }
    // Input gradient, on a sample of positions.
    let xs = stride(from: 0, to: c.input.count, by: max(1, c.input.count / 60)).map { $0 }
    let nx = xs.map { numeric(x.pointer, $0) }
    XCTAssertLessThan(relativeError(xs.map { analyticX[$0] }, nx), 0.03, "\(c.layer.name) d/dx", file: file, line: line)
    // Every trainable tensor, on a sample of entries.
    for e in c.store.entries where e.role.isTrainable {
        let idx = stride(from: 0, to: e.count, by: max(1, e.count / 25)).map { $0 }
        let n = idx.map { numeric(c.store.values.pointer + e.offset, $0) }
        XCTAssertLessThan(relativeError(idx.map { analyticP[e.offset + $0] }, n), 0.03, "d/d \(e.name)", file: file, line: line)
    }
}


final class GradientTests: XCTestCase {
    typealias Case = LayerCase
    func check(_ c: Case, seed: UInt64 = 7, h: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) throws {
        try checkGradients(c, seed: seed, h: h, file: file, line: line)
    }

    func shape(_ c: Int, _ n: Int, _ h: Int, _ w: Int) -> ActivationShape { ActivationShape(channels: c, batch: n, height: h, width: w) }

    func testConv2dGradients() throws {
        for (cin, cout, k, s, p, g, bias) in [(3, 4, 3, 2, 1, 1, false), (4, 6, 3, 1, 0, 2, true), (8, 8, 1, 1, 0, 8, false), (4, 4, 1, 2, 0, 1, true)] {
            let store = ParameterStore()
            let conv = Conv2dLayer(name: "conv", store: store, inputChannels: cin, outputChannels: cout, kernelSize: k, stride: s, padding: p, groups: g, bias: bias)
            try check(Case(store: store, layer: conv, input: shape(cin, 2, 5, 6)))
        }
    }

    func testBatchNormTrainingGradients() throws {
        let store = ParameterStore()
        try check(Case(store: store, layer: BatchNormLayer(name: "bn", store: store, channels: 3), input: shape(3, 3, 2, 3)))
    }

    func testPoolingReluDropoutConcatGradients() throws {
        for layer: Layer in [PoolLayer(name: "max", mode: .max, kernelSize: 3, stride: 2, padding: 1),
                             PoolLayer(name: "avg", mode: .average, kernelSize: 2, stride: 1),
                             ActivationLayer.relu("relu"), ActivationLayer.relu6("relu6"), DropoutLayer(name: "drop", probability: 0.5), ConcatSelfLayer(name: "cat")] {
            try check(Case(store: ParameterStore(), layer: layer, input: shape(2, 2, 5, 5)))
        }
    }

    /// The reused block with N = 3: shared dw/pw gradients are sums over the three
    /// applications; each iteration's BatchNorm has its own.
    func testReuseBlockGradientsAccumulateOverIterations() throws {
        let store = ParameterStore()
        let block = ReuseBlock(name: "stage1", store: store, planes: 8, iterations: 3)
        try check(Case(store: store, layer: block, input: shape(8, 2, 3, 4)))
    }

    /// Depthwise backward on its own, including stride 2 and multiplier 3.
    func testDepthwiseGradients() {
        var rng = SplitMix64(seed: 11)
        for (c, m, k, s, p) in [(2, 2, 3, 1, 1), (3, 3, 3, 2, 1), (2, 1, 5, 1, 2)] {
            let (n, hgt, wid) = (2, 5, 6)
            let g = ConvGeometry(kernel: k, stride: s, padding: p)
            let ho = g.outputHeight(hgt), wo = g.outputWidth(wid)
            let x = randomArray(n * c * hgt * wid, &rng), w = randomArray(c * m * k * k, &rng)
            let r = randomArray(n * c * m * ho * wo, &rng)
            func loss(_ x: [Float], _ w: [Float]) -> Double {
                var y = [Float](repeating: 0, count: r.count)
                depthwiseForward(&y, x, w, channels: c, multiplier: m, batch: n, height: hgt, width: wid, geometry: g, threading: Threading(threads: 1))
                return zip(y, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: w.count)
            depthwiseBackward(gradInput: &gx, gradWeight: &gw, gradOutput: r, input: x, weight: w, channels: c, multiplier: m,
                              batch: n, height: hgt, width: wid, geometry: g, threading: Threading(threads: 2))
            // Central differences on copies (perturbing x in place while loss() reads it was an
            // exclusivity violation that ThreadSanitizer's build caught).
            func fd(x i: Int? = nil, w j: Int? = nil) -> Float {
                var xp = x, xm = x, wp = w, wm = w
                if let i { xp[i] += 1e-2; xm[i] -= 1e-2 }
                if let j { wp[j] += 1e-2; wm[j] -= 1e-2 }
                return Float((loss(xp, wp) - loss(xm, wm)) / 2e-2)
            }
            assertClose(gx, (0..<x.count).map { fd(x: $0) }, atol: 1e-3, rtol: 1e-2, "dw d/dx")
            assertClose(gw, (0..<w.count).map { fd(w: $0) }, atol: 1e-3, rtol: 1e-2, "dw d/dw")
        }
    }

    func testSoftmaxCrossEntropy() {
        // Two images, three classes, [K][N] layout; values from log-softmax by hand.
        let logits: [Float] = [1, 0, 2, 0, 3, 1000]            // image 0: (1, 2, 3), image 1: (0, 0, 1000)
        var grad = [Float](repeating: 0, count: 6)
        let (loss, correct) = softmaxCrossEntropy(logits: logits, labels: [2, 0], gradient: &grad, classes: 3, batch: 2)
        let l0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0, l1 = 1000.0
        XCTAssertEqual(loss, (l0 + l1) / 2, accuracy: 1e-4)
        XCTAssertEqual(correct, 1)
        let s = exp(1.0) + exp(2.0) + exp(3.0)
        assertClose([grad[0], grad[2], grad[4]], [Float(exp(1.0) / s / 2), Float(exp(2.0) / s / 2), Float((exp(3.0) / s - 1) / 2)], atol: 1e-6)
        assertClose([grad[1], grad[3], grad[5]], [-0.5, 0, 0.5], atol: 1e-6)
    }

    /// End to end: a whole LruNet with N = 3, the real cross-entropy, sampled weights in
    /// the first conv, the shared convs of stage 1 and stage 4, per-iteration BN and the classifier.
    func testWholeNetworkGradientWithReuse() throws {
        let model = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 3, inChannels: 1), threading: Threading(threads: 2))
        model.initialise(seed: 5)
        var rng = SplitMix64(seed: 6)
        let n = 4
        let x = (0..<(n * 28 * 28)).map { _ in rng.nextUniform() }
        let labels: [Int32] = [3, 1, 4, 1]
        func loss() throws -> Double {
            try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                try model.lossAndGradients(images: xb.baseAddress!, labels: lb.baseAddress!, batch: n, channels: 1, height: 28, width: 28, seed: 1)
            } }
        }
        _ = try loss()
        let analytic = model.parameters.gradients.array
        let h: Float = 1e-3
        for name in ["features.0.weight", "stage1.dw.weight", "stage1.pw.weight", "stage4.dw.weight", "stage4.pw.weight",
                     "stage2.dw_bn_list.1.weight", "stage3.pw_bn_list.2.bias", "classifier.0.weight", "classifier.4.bias"] {
            let ref = model.parameters.ref(named: name)!
            let e = model.parameters.entry(ref), p = model.parameters.pointer(ref)
            var num: [Float] = [], ana: [Float] = []
            for i in stride(from: 0, to: e.count, by: max(1, e.count / 12)) {
                let old = p[i]
                p[i] = old + h; let lp = try loss()
                p[i] = old - h; let lm = try loss()
                p[i] = old
                num.append(Float((lp - lm) / Double(2 * h)))
                ana.append(analytic[e.offset + i])
            }
            // Thousands of ReLUs lie between the loss and the first layers, so allow 10% here;
            // an unsummed reuse iteration or a dropped residual is off by far more.
            XCTAssertGreaterThan(ana.map(abs).max() ?? 0, 1e-4, "\(name): gradient vanished")
            XCTAssertLessThan(relativeError(ana, num), 0.10, "\(name): analytic \(ana.prefix(4)) vs numeric \(num.prefix(4))")
        }
    }
}

/// The layers and containers the baselines add, each against finite differences.
final class GeneralGraphGradientTests: XCTestCase {
    func shape(_ c: Int, _ n: Int, _ h: Int, _ w: Int) -> ActivationShape { ActivationShape(channels: c, batch: n, height: h, width: w) }

    func testDepthwiseConvGradients() throws {
        for (c, m, s) in [(3, 1, 1), (4, 2, 2), (2, 1, 2), (3, 3, 1)] {
            let store = ParameterStore()
            let dw = DepthwiseLayer(name: "dw", store: store, channels: c, multiplier: m, stride: s)
            try checkGradients(LayerCase(store: store, layer: dw, input: shape(c, 2, 7, 6)))
        }
    }

    func testLinearAndGlobalPoolGradients() throws {
        let store = ParameterStore()
        let head = SequenceLayer("head", [GlobalPoolLayer(name: "avgpool"),
                                       LinearLayer(name: "linear", store: store, inputFeatures: 6, outputFeatures: 4)])
        try checkGradients(LayerCase(store: store, layer: head, input: shape(6, 3, 4, 4)))
        let noBias = ParameterStore()
        try checkGradients(LayerCase(store: noBias, layer: LinearLayer(name: "l", store: noBias, inputFeatures: 5, outputFeatures: 3, bias: false),
                                          input: shape(5, 4, 1, 1)))
    }

    func testChannelShuffles() throws {
        for kind in [ShuffleLayer.Kind.groups(3), .groups(2), .lruNetHalfSwap] {
            try checkGradients(LayerCase(store: ParameterStore(), layer: ShuffleLayer(name: "shuffle", kind: kind), input: shape(6, 2, 3, 3)))
        }
        // The two 2-group shuffles differ: ShuffleNet's out[2k] = in[k], LruNet's out[2k] = in[C/2 + k].
        let standard = ShuffleLayer(name: "s", kind: .groups(2)), halfSwap = ShuffleLayer(name: "h", kind: .lruNetHalfSwap)
        XCTAssertEqual((0..<6).map { standard.kind.source($0, channels: 6) }, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual((0..<6).map { halfSwap.kind.source($0, channels: 6) }, [3, 0, 4, 1, 5, 2])
        XCTAssertEqual((0..<6).map { ShuffleLayer(name: "g3", kind: .groups(3)).kind.source($0, channels: 6) }, [0, 2, 4, 1, 3, 5])
    }

    /// A residual (MobileNetV2's, no activation; ShuffleNet's, with ReLU) and two branches
    /// joined by concat: forked (the gradients add) and split by channel.
    func testContainers() throws {
        for activation in [ActivationKind.none, .relu] {
            let store = ParameterStore()
            let body = SequenceLayer("body", [Conv2dLayer(name: "c1", store: store, inputChannels: 4, outputChannels: 4, kernelSize: 1),
                                           BatchNormLayer(name: "bn", store: store, channels: 4), ActivationLayer.relu6("r6"),
                                           DepthwiseLayer(name: "dw", store: store, channels: 4)])
            try checkGradients(LayerCase(store: store, layer: ResidualLayer("add", body: body, activation: activation), input: shape(4, 2, 5, 5)))
        }
        let fork = ParameterStore()
        let left = SequenceLayer("l", [DepthwiseLayer(name: "dw", store: fork, channels: 3, stride: 2),
                                    Conv2dLayer(name: "pw", store: fork, inputChannels: 3, outputChannels: 5, kernelSize: 1)])
        try checkGradients(LayerCase(store: fork, layer: ConcatLayer("cat", input: .fork, left: left,
                                                                     right: PoolLayer(name: "avg", mode: .average, kernelSize: 3, stride: 2, padding: 1)),
                                          input: shape(3, 2, 6, 7)))
        let split = ParameterStore()
        let branch = SequenceLayer("b", [Conv2dLayer(name: "pw", store: split, inputChannels: 3, outputChannels: 3, kernelSize: 1),
                                      ActivationLayer.relu("relu")])
        try checkGradients(LayerCase(store: split, layer: ConcatLayer("split", input: .split, left: nil, right: branch), input: shape(6, 2, 4, 3)))
    }

    /// Whole small networks of each baseline kind: gradients through the whole graph. At random
    /// init these deep BatchNorm networks are chaotic in their early weights (a finite
    /// difference of the stem changes sign between h = 1e-2 and 1e-3), so the check samples the
    /// last third of the tensors, where differences are stable; every layer and container has
    /// its own check above.
    func testWholeBaselineNetworks() throws {
        var rng = SplitMix64(seed: 4)
        for config in [ModelConfig(arch: .mobilenet, numClasses: 4, widthMult: 0.125, inChannels: 1, dropout: 0),
                       ModelConfig(arch: .mobilenetv2, numClasses: 4, widthMult: 0.1, inChannels: 1, dropout: 0),
                       ModelConfig(arch: .shufflenet, numClasses: 4, widthMult: 0.25, groups: 3, inChannels: 1),
                       ModelConfig(arch: .shufflenetv2, numClasses: 4, widthMult: 0.25, inChannels: 1)] {
            let model = try Network(config: config, threading: Threading(threads: 2))
            model.initialise(seed: 5)
            let x = Tensor(shape: [3, 1, 16, 16], data: randomArray(3 * 256, &rng))
            let labels = [0, 2, 3]
            _ = try model.lossAndGradients(images: x, labels: labels)
            let analytic = model.parameters.gradients.array
            // A sample of each trainable tensor, by central differences of the loss.
            var a: [Float] = [], n: [Float] = []
            let trainable = model.parameters.entries.filter { $0.role.isTrainable }
            for e in trainable.suffix(trainable.count / 3) {
                let p = model.parameters.values.pointer + e.offset
                for i in Set([0, e.count / 2, e.count - 1]) {
                    let old = p[i], h: Float = 1e-3
                    p[i] = old + h; let lp = try model.lossAndGradients(images: x, labels: labels)
                    p[i] = old - h; let lm = try model.lossAndGradients(images: x, labels: labels)
                    p[i] = old
                    n.append(Float((lp - lm) / Double(2 * h))); a.append(analytic[e.offset + i])
                }
            }
            // The norm of the error over every sampled entry against the norm of the gradients (as
            // the layer checks): a dropped or unsummed path is off by tens of percent.
            XCTAssertLessThan(relativeError(a, n), 0.05, "\(config.summary), \(a.count) entries")
        }
    }
}

/// Inference with the fusion pass against the same network with every layer on its own.
final class FusionTests: XCTestCase {
    func testFusedInferenceMatchesUnfusedForEveryArchitecture() throws {
        var rng = SplitMix64(seed: 8)
        for config in oneOfEachArchitecture {
            let model = try Network(config: config, threading: Threading(threads: 2))
            model.initialise(seed: 3)
            // Non-trivial BatchNorm statistics, so folding them matters.
            for e in model.parameters.entries where e.role == .runningMean || e.role == .runningVar || e.role == .bnBias {
                let p = model.parameters.values.pointer + e.offset
                for i in 0..<e.count { p[i] = e.role == .runningVar ? 0.5 + rng.nextUniform() : 0.2 * (2 * rng.nextUniform() - 1) }
            }
            let side = config.inChannels == 1 ? 28 : 32
            for batch in [1, 5] {
                let x = Tensor(shape: [batch, config.inChannels, side, side], data: (0..<(batch * config.inChannels * side * side)).map { _ in rng.nextUniform() })
                model.fusesLayers = true
                let fused = try model(x)
                XCTAssertFalse(model.fusions.isEmpty, "\(config.summary): the pass fused nothing")
                model.fusesLayers = false
                let plain = try model(x)
                XCTAssertTrue(model.fusions.isEmpty)
                let scale = plain.data.map(abs).max() ?? 1
                assertClose(fused.data, plain.data, atol: 1e-5 * max(scale, 1), rtol: 1e-4, "\(config.summary) batch \(batch)")
            }
        }
        // What the pass decides for MobileNetV2: epilogues everywhere, and the residual adds.
        let v2 = try Network(config: ModelConfig(arch: .mobilenetv2, widthMult: 0.25, inChannels: 1))
        _ = try v2(Tensor(zeros: [1, 1, 28, 28]))
        let rules = Dictionary(grouping: v2.fusions, by: \.rule).mapValues(\.count)
        XCTAssertEqual(rules["residual in conv epilogue"], 10, "\(rules)")      // 10 of the 17 blocks keep stride 1 and width
        XCTAssertEqual(rules["conv epilogue"], 1 + 1 * 2 + 16 * 3 + 1, "\(rules)")
        // ShuffleNetV2: each unit's branches end in a 1x1 convolution that writes into the join
        // (a basic unit's right branch, both of a down unit); ShuffleNet: a stride-2 unit's bottleneck.
        for (arch, width, count) in [(Architecture.shufflenetv2, 0.25, 3 * 2 + 13), (.shufflenet, 0.5, 3)] {
            let model = try Network(config: ModelConfig(arch: arch, widthMult: width, inChannels: 1))
            _ = try model(Tensor(zeros: [1, 1, 28, 28]))
            XCTAssertEqual(model.fusions.filter { $0.rule == "branch written into the join" }.count, count, "\(arch)")
        }
    }
}
