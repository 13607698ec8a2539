import Dispatch
import LruNet

/// Single kernels on LruNet's stage shapes, for the benchmark and the CI
/// performance check. Each `run` returns seconds per call (median of `runs`)
/// and the multiply-accumulates per call, so callers can report GMAC/s or
/// compare the time with a same-run sgemm calibration.
package struct KernelBench {
    package let name: String
    package let macs: Int
    /// The context a whole-block bench runs in: set its ``RunContext/profile`` for the op split.
    package let context: RunContext?
    let body: () -> Void

    init(name: String, macs: Int, context: RunContext? = nil, body: @escaping () -> Void) {
        self.name = name; self.macs = macs; self.context = context; self.body = body
    }

    package func secondsPerCall(runs: Int, repeats: Int) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<repeats { body() }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 / Double(repeats))
        }
        return times.sorted()[times.count / 2]
    }

    /// Depthwise 3x3 (multiplier 2) forward with the BN epilogue, pointwise grouped GEMM, and the
    /// fused BN + residual + ReLU epilogue, for a block of `planes` channels on `side x side` images.
    package static func stageKernels(planes: Int, side: Int, batch: Int, threading: Threading) -> [KernelBench] {
        var rng = SplitMix64(seed: 3)
        let l = batch * side * side
        let x = FloatBuffer(count: planes * l), wide = FloatBuffer(count: 2 * planes * l), y = FloatBuffer(count: planes * l)
        for i in 0..<x.count { x.pointer[i] = rng.nextUniform() }
        let dw = FloatBuffer(count: 2 * planes * 9), pw = FloatBuffer(count: planes * planes * 2 / 8)
        for i in 0..<dw.count { dw.pointer[i] = rng.nextUniform() - 0.5 }
        for i in 0..<pw.count { pw.pointer[i] = rng.nextUniform() - 0.5 }
        let scale = FloatBuffer(count: 2 * planes), shift = FloatBuffer(count: 2 * planes)
        for i in 0..<scale.count { scale.pointer[i] = 1 + 0.1 * rng.nextUniform() }
        let scratch = Scratch()
        let g = ConvGeometry(kernel: 3, stride: 1, padding: 1)
        let pwShape = ConvShape(inChannels: 2 * planes, outChannels: planes, groups: 8, geometry: ConvGeometry(kernel: 1),
                                batch: batch, height: side, width: side)
        let tag = "\(planes)ch \(side)x\(side) b\(batch)"
        return [
            KernelBench(name: "depthwise 3x3 x2 \(tag)", macs: 2 * planes * 9 * l) {
                depthwiseForward(wide.pointer, x.pointer, dw.pointer, channels: planes, multiplier: 2, batch: batch,
                                 height: side, width: side, geometry: g, scale: scale.pointer, shift: shift.pointer,
                                 scratch: scratch, threading: threading)
            },
            KernelBench(name: "1x1 GEMM g8 \(tag)", macs: planes * (2 * planes / 8) * l) {
                convForward(y.pointer, wide.pointer, weight: pw.pointer, bias: nil, shape: pwShape, columns: nil, threading: threading)
            },
            KernelBench(name: "BN+res+ReLU \(tag)", macs: planes * l) {
                channelAffine(y.pointer, y.pointer, scale: scale.pointer, shift: shift.pointer, residual: x.pointer, activation: .relu,
                              channels: planes, rowLength: l, threading: threading)
            },
        ]
    }

    /// The baselines' downsampling depthwise 3x3 stride 2 (with its BatchNorm epilogue) on
    /// `planes` channels of `side x side` images.
    package static func downsampling(planes: Int, side: Int, batch: Int, threading: Threading) -> KernelBench {
        var rng = SplitMix64(seed: 4)
        let g = ConvGeometry(kernel: 3, stride: 2, padding: 1)
        let out = g.outputHeight(side) * g.outputWidth(side) * batch
        let x = FloatBuffer(count: planes * batch * side * side), y = FloatBuffer(count: planes * out)
        for i in 0..<x.count { x.pointer[i] = rng.nextUniform() }
        let w = FloatBuffer(count: planes * 9), scale = FloatBuffer(count: planes), shift = FloatBuffer(count: planes)
        for i in 0..<w.count { w.pointer[i] = rng.nextUniform() - 0.5 }
        for i in 0..<planes { scale.pointer[i] = 1; shift.pointer[i] = 0.1 }
        let scratch = Scratch()
        return KernelBench(name: "depthwise 3x3/2 \(planes)ch \(side)x\(side) b\(batch)", macs: planes * 9 * out) {
            depthwiseForward(y.pointer, x.pointer, w.pointer, channels: planes, multiplier: 1, batch: batch, height: side, width: side,
                             geometry: g, scale: scale.pointer, shift: shift.pointer, scratch: scratch, threading: threading)
        }
    }

    /// The baselines' dense 1x1 convolution with its BatchNorm and ReLU epilogue, `channels` to
    /// `channels` on `side x side` images: at batch 1 a 4x4 map's row is two vectors, the kernel's
    /// narrow-panel path.
    package static func densePointwise(channels: Int, side: Int, batch: Int, threading: Threading) -> KernelBench {
        var rng = SplitMix64(seed: 6)
        let l = batch * side * side
        let x = FloatBuffer(count: channels * l), y = FloatBuffer(count: channels * l), w = FloatBuffer(count: channels * channels)
        for i in 0..<x.count { x.pointer[i] = rng.nextUniform() }
        for i in 0..<w.count { w.pointer[i] = rng.nextUniform() - 0.5 }
        let scale = FloatBuffer(count: channels), shift = FloatBuffer(count: channels)
        for i in 0..<channels { scale.pointer[i] = 1; shift.pointer[i] = 0.1 }
        let name = "1x1 dense \(channels)ch \(side)x\(side) b\(batch) \(threading.threads)t"
        return KernelBench(name: name, macs: channels * channels * l) {
            pointwiseForward(y.pointer, x.pointer, weight: w.pointer, inChannels: channels, outChannels: channels, groups: 1,
                             rowLength: l, scale: scale.pointer, shift: shift.pointer, residual: nil, activation: .relu,
                             threading: threading)
        }
    }

    /// Training's fused depthwise 3x3 + BatchNorm (DepthwiseBatchNorm.swift), forward and backward
    /// with the residual gradient added, on one stage shape. MACs count the backward as twice the forward.
    package static func depthwiseBatchNormTraining(planes: Int, side: Int, batch: Int, threading: Threading) -> KernelBench {
        var rng = SplitMix64(seed: 5)
        let l = batch * side * side, wide = 2 * planes
        let x = FloatBuffer(count: planes * l), y = FloatBuffer(count: wide * l), gy = FloatBuffer(count: wide * l)
        let raw = FloatBuffer(count: wide * l)
        let gx = FloatBuffer(count: planes * l), residual = FloatBuffer(count: planes * l)
        for i in 0..<x.count { x.pointer[i] = rng.nextUniform(); residual.pointer[i] = rng.nextUniform() - 0.5 }
        for i in 0..<gy.count { gy.pointer[i] = rng.nextUniform() - 0.5 }
        let w = FloatBuffer(count: wide * 9), gw = FloatBuffer(count: wide * 9)
        for i in 0..<w.count { w.pointer[i] = rng.nextUniform() - 0.5 }
        // gamma, beta, saved mean, saved inverse std, running mean, running variance, their gradients.
        let bnState = FloatBuffer(count: 8 * wide)
        for i in 0..<wide { bnState.pointer[i] = 1; bnState.pointer[5 * wide + i] = 1 }
        let p = { (i: Int) in bnState.pointer + i * wide }
        let forward = BatchNormTraining(gamma: p(0), beta: p(1), savedMean: p(2), savedInvStd: p(3), runningMean: p(4),
                                        runningVar: p(5), momentum: 0.1, eps: 1e-5)
        let backward = BatchNormGradient(gamma: p(0), savedMean: p(2), savedInvStd: p(3), gradGamma: p(6), gradBeta: p(7))
        let scratch = Scratch()
        return KernelBench(name: "depthwise+BN train \(planes)ch \(side)x\(side) b\(batch)", macs: 3 * wide * 9 * l) {
            withExtendedLifetime(bnState) {}        // the BatchNorm structs point into it
            depthwiseBatchNormTrainForward(y.pointer, raw: raw.pointer, x.pointer, w.pointer, bn: forward, channels: planes, multiplier: 2,
                                           batch: batch, height: side, width: side, scratch: scratch, threading: threading)
            depthwiseBatchNormBackward(gradInput: gx.pointer, gradWeight: gw.pointer, bn: backward, gradOutput: gy.pointer, raw: raw.pointer,
                                       input: x.pointer, weight: w.pointer, addToInput: residual.pointer, channels: planes,
                                       multiplier: 2, batch: batch, height: side, width: side, scratch: scratch, threading: threading)
        }
    }

    /// A reused block with random weights and BN statistics, planned for `batch` images, a random
    /// input (and output gradient) and a context: what the whole-block benches run.
    private static func randomBlock(planes: Int, side: Int, batch: Int, iterations: Int, training: Bool,
                                    threading: Threading) throws -> (ReuseBlock, x: FloatBuffer, gy: FloatBuffer, RunContext) {
        let store = ParameterStore()
        let block = ReuseBlock(name: "stage", store: store, planes: planes, iterations: iterations)
        store.seal()
        store.initialise(seed: 4)
        let shape = try block.plan(input: ActivationShape(channels: planes, batch: batch, height: side, width: side), training: training)
        var rng = SplitMix64(seed: 6)
        let x = FloatBuffer(count: shape.count), gy = FloatBuffer(count: shape.count)
        for i in 0..<x.count { x.pointer[i] = rng.nextUniform(); gy.pointer[i] = rng.nextUniform() - 0.5 }
        return (block, x, gy, RunContext(training: training, threading: threading, cache: ParameterCache(store: store)))
    }

    /// A whole reused block in inference (`iterations` applications, tile by tile: depthwise + BN,
    /// 1x1 + BN + residual + ReLU + shuffle).
    package static func tiledBlock(planes: Int, side: Int, batch: Int, iterations: Int, threading: Threading) throws -> KernelBench {
        let (block, x, _, context) = try randomBlock(planes: planes, side: side, batch: batch, iterations: iterations,
                                                     training: false, threading: threading)
        let m = block.macsPerIteration
        return KernelBench(name: "reuse block x\(iterations) \(planes)ch \(side)x\(side) b\(batch)",
                           macs: iterations * (m.dw + m.pw) * batch) {
            context.cache.beginPass()
            _ = block.forward(x.pointer, context)
        }
    }

    /// A whole reused block in training at batch `batch`: the forward pass with batch statistics
    /// and the backward pass to the input and every weight. The MACs count the backward as twice
    /// the forward.
    package static func trainingBlock(planes: Int, side: Int, batch: Int, iterations: Int, threading: Threading) throws -> KernelBench {
        let (block, x, gy, context) = try randomBlock(planes: planes, side: side, batch: batch, iterations: iterations,
                                                      training: true, threading: threading)
        let m = block.macsPerIteration
        return KernelBench(name: "train block x\(iterations) \(planes)ch \(side)x\(side) b\(batch)",
                           macs: 3 * iterations * (m.dw + m.pw) * batch, context: context) {
            context.cache.beginPass()
            _ = block.forward(x.pointer, context)
            _ = block.backward(gy.pointer, needInputGradient: true, context)
        }
    }
}
