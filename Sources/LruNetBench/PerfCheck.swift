import Foundation
import LruNet

/// The CI performance regression check.
///
/// Measures a few key kernels and the whole Fashion-MNIST lru10 forward pass,
/// each as a ratio of its throughput to an sgemm calibration measured in the
/// same run. Calibration and kernel alternate in 7 pairs a few milliseconds apart
/// and the median pair ratio counts: this VM's speed changes in phases of seconds
/// (sgemm was seen at 80 and at 130 GFLOP/s minutes apart), and both halves of a
/// pair see the same phase. A slower or busier machine slows both sides, so the
/// ratio holds; a slower kernel lowers it. Fails when any ratio is more than
/// `tolerance` below the committed baseline.
enum PerfCheck {
    static let tolerance = 0.30

    struct Metric { let name: String; let ratio: Double; let detail: String }

    /// One measurement that can be repeated: a kernel or the whole forward, with its own calibration.
    struct Probe { let name: String; let measure: () throws -> Metric }

    static func probes(threads: Int) throws -> [Probe] {
        let threading = Threading(threads: threads)
        /// GFLOP/s of one sgemm on 512^3 split over the threads (one warm-up, one timed call).
        func calibration() -> Double { sgemmCalibration(n: 512, threads: threads, runs: 1).median }
        /// Median over 7 (calibration, kernel) pairs of kernel GFLOP/s / calibration GFLOP/s.
        func pairedRatio(_ gflops: () throws -> Double) rethrows -> (ratio: Double, gflops: Double, calibration: Double) {
            var pairs: [(Double, Double, Double)] = []
            for _ in 0..<7 {
                let cal = calibration()
                let g = try gflops()
                pairs.append((g / cal, g, cal))
            }
            pairs.sort { $0.0 < $1.0 }
            return pairs[3]
        }
        var probes: [Probe] = []
        // Stage 1 at batch 16 keeps its working set near L2 size: at batch 64 it lives in the shared L3,
        // where neighbours on this VM made its timing swing 3x.
        let kernels = KernelBench.stageKernels(planes: 64, side: 14, batch: 16, threading: threading)
            + KernelBench.stageKernels(planes: 512, side: 4, batch: 64, threading: threading)
        for k in kernels {
            probes.append(Probe(name: k.name) {
                let r = pairedRatio { 2 * Double(k.macs) / k.secondsPerCall(runs: 1, repeats: 5) / 1e9 }
                return Metric(name: k.name, ratio: r.ratio, detail: String(format: "%.1f GFLOP/s vs sgemm %.1f", r.gflops, r.calibration))
            })
        }
        // Whole reused blocks, tile by tile, on the first and last stage shapes.
        for (planes, side, batch) in [(64, 14, 16), (512, 4, 64)] {
            let k = try KernelBench.tiledBlock(planes: planes, side: side, batch: batch, iterations: 4, threading: threading)
            probes.append(Probe(name: k.name) {
                let r = pairedRatio { 2 * Double(k.macs) / k.secondsPerCall(runs: 1, repeats: 2) / 1e9 }
                return Metric(name: k.name, ratio: r.ratio, detail: String(format: "%.1f GFLOP/s vs sgemm %.1f", r.gflops, r.calibration))
            })
        }
        // Training's fused depthwise + BatchNorm kernels, forward and backward, on the first stage shape.
        do {
            let k = KernelBench.depthwiseBatchNormTraining(planes: 64, side: 14, batch: 16, threading: threading)
            probes.append(Probe(name: k.name) {
                let r = pairedRatio { 2 * Double(k.macs) / k.secondsPerCall(runs: 1, repeats: 3) / 1e9 }
                return Metric(name: k.name, ratio: r.ratio, detail: String(format: "%.1f GFLOP/s vs sgemm %.1f", r.gflops, r.calibration))
            })
        }
        // The whole lru10 forward at batch 64 and at batch 1, and an lru2 training step.
        var rng = SplitMix64(seed: 9)
        let x = (0..<(64 * 28 * 28)).map { _ in rng.nextUniform() }
        let labels = (0..<64).map { Int32($0 % 10) }
        var y = [Float](repeating: 0, count: 64 * 10)
        let lru10 = try LruNet(config: LruNetConfig(numClasses: 10, layerReuse: 10, inChannels: 1), threading: threading)
        lru10.parameters.initialise(seed: 1)
        let lru2 = try LruNet(config: LruNetConfig(numClasses: 10, layerReuse: 2, inChannels: 1), threading: threading)
        lru2.parameters.initialise(seed: 1)
        func forward(_ batch: Int) throws {
            try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                try lru10.infer(xb.baseAddress!, batch: batch, channels: 1, height: 28, width: 28, into: yb.baseAddress!)
            } }
        }
        func trainStep() throws {
            _ = try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                try lru2.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: 64, channels: 1, height: 28, width: 28,
                                   optimizer: SGD(), learningRate: 0.01, seed: 1)
            } }
        }
        let lru2Flops = 3 * 2 * (try lru2.costReport(height: 28, width: 28)).totalMACs   // backward ~ 2x forward
        for (name, images, repeats, flopsPerImage, work) in [
            ("lru10 forward b64", 64, 1, 2 * 22.91e6, { try forward(64) }),
            ("lru10 forward b1", 1, 16, 2 * 22.91e6, { try forward(1) }),
            ("lru2 training step b64", 64, 1, Double(lru2Flops), { try trainStep() }),
        ] as [(String, Int, Int, Double, () throws -> Void)] {
            probes.append(Probe(name: name) {
                try work()
                let r = try pairedRatio {
                    let t = now(); for _ in 0..<repeats { try work() }
                    return Double(images * repeats) * flopsPerImage / (now() - t) / 1e9
                }
                return Metric(name: name, ratio: r.ratio, detail: String(format: "%.0f img/s, %.1f GFLOP/s vs sgemm %.1f",
                                                                          r.gflops * 1e9 / flopsPerImage, r.gflops, r.calibration))
            })
        }
        return probes
    }

    /// The baseline: the median of three measurements of each probe.
    static func measureBaseline(threads: Int) throws -> [Metric] {
        try probes(threads: threads).map { p in
            let runs = try (0..<3).map { _ in try p.measure() }.sorted { $0.ratio < $1.ratio }
            return runs[1]
        }
    }

    static func writeBaseline(_ metrics: [Metric], to path: String) throws {
        let dict = Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, $0.ratio) })
        let data = try JSONSerialization.data(withJSONObject: ["ratios_to_sgemm": dict, "machine": machineDescription()],
                                              options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
        print("wrote baseline \(path)")
    }

    /// Measures every probe and prints it against the baseline; returns false if any dropped by more
    /// than the tolerance. A probe that fails is measured again, after a pause, up to `attempts` times
    /// in all: on a shared machine a memory-bound kernel can lose ten seconds or more to a neighbour
    /// (seen: an unchanged depthwise kernel at 60-66% of baseline on four attempts 2 s apart, and at
    /// 103% a minute later), but a real regression fails every attempt.
    static func check(threads: Int, baselinePath: String, attempts: Int = 6, pause: TimeInterval = 5) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: baselinePath),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let base = json["ratios_to_sgemm"] as? [String: Double] else {
            throw NSError(domain: "lrunet-bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(baselinePath): no readable baseline"])
        }
        var ok = true
        print("performance check against \(baselinePath) (fail below \(Int(100 * (1 - tolerance)))% of baseline)")
        let all = try probes(threads: threads)
        // One unrecorded measurement first: in fresh-clone runs the first probe's first attempt read
        // 29-66% of baseline again and again (the worker threads and buffers still cold).
        _ = try all.first?.measure()
        for probe in all {
            for attempt in 1...attempts {
                if attempt > 1 { Thread.sleep(forTimeInterval: pause) }   // let a neighbour's burst pass
                let m = try probe.measure()
                guard let b = base[m.name] else { print("  NEW   \(m.name): ratio \(String(format: "%.3f", m.ratio)) (\(m.detail))"); break }
                let rel = m.ratio / b
                let pass = rel >= 1 - tolerance
                let last = pass || attempt == attempts
                let tag = pass ? "ok  " : (last ? "FAIL" : "slow")
                print("  \(tag) \(m.name): ratio \(String(format: "%.3f", m.ratio)), baseline \(String(format: "%.3f", b)), \(String(format: "%.0f", 100 * rel))% (\(m.detail))\(pass || last ? "" : ", measuring again")")
                if last { ok = ok && pass; break }
            }
        }
        print(ok ? "performance check: passed" : "performance check: FAILED (a kernel is more than 30% slower relative to sgemm)")
        return ok
    }
}
