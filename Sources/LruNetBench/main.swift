import Foundation
import CLruNetKernels
import LruNet

// lrunet-bench: the numbers behind `make bench`, the CI performance check and
// `make bench-compare`; `lrunet-bench --help` lists the modes (Options.swift).

let options = BenchOptions.parseOrExit()
do { try InstructionSet.checkEnvironment() } catch { print("lrunet-bench: \(error)"); exit(2) }
let quick = options.quick
let cores = options.threads ?? CPUBudget.threads

do {
    // The CI regression check, its baseline and its probes are separate, short modes.
    if let names = options.probes {
        try PerfCheck.printProbes(threads: cores, names: names.split(separator: ",").map(String.init))
        exit(0)
    }
    if let path = options.check {
        var ok = true
        if let classify = options.consumer, let lrunet = options.lrunet, let weights = options.weights {
            ok = try PerfCheck.checkConsumer(classify: classify, lrunet: lrunet, weights: weights)
        }
        ok = try PerfCheck.check(threads: cores, baselinePath: path, forceReference: options.againstReference) && ok
        exit(ok ? 0 : 1)
    }
    if let path = options.compare, let weights = options.weights {
        try Compare.run(results: path, weights: weights, threads: cores)
        exit(0)
    }
    if let path = options.writeBaseline {
        try PerfCheck.writeBaseline(threads: cores, to: path)
        exit(0)
    }
    // The parallel regions of lru10's passes at 16, 32 and 64 threads (docs/parallelism.md).
    if options.parallelism {
        try Parallelism.report(markdown: options.markdown)
        exit(0)
    }
} catch {
    print("lrunet-bench: error: \(error)")
    exit(1)
}
let runs = quick ? 3 : 5

struct ModelSpec { let name: String; let config: ModelConfig; let side: Int }
let allSpecs = [
    ModelSpec(name: "fashionmnist-lru1", config: ModelConfig.lrunet(numClasses: 10, layerReuse: 1, inChannels: 1), side: 28),
    ModelSpec(name: "fashionmnist-lru10", config: ModelConfig.lrunet(numClasses: 10, layerReuse: 10, inChannels: 1), side: 28),
    ModelSpec(name: "cifar10-lru14", config: ModelConfig.lrunet(numClasses: 10, layerReuse: 14, inChannels: 3), side: 32),
]
let onlyModel = options.model
let specs = allSpecs.filter { onlyModel == nil || $0.name == onlyModel }
if specs.isEmpty { print("lrunet-bench: unknown model \(onlyModel!); known: \(allSpecs.map(\.name).joined(separator: ", "))"); exit(2) }

var report: [String: Any] = ["machine": machineDescription(threads: cores), "cores": cores, "runs": runs]
func fmt(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
/// "1 thread", "2 threads".
func threadCount(_ n: Int) -> String { n == 1 ? "1 thread" : "\(n) threads" }

print("LruNet-Swift benchmark on \(machineDescription(threads: cores)); median of \(runs) runs after warm-up, [min-max] in brackets")
let isa = InstructionSet.active
print("kernels: \(isa) (\(isa.lanes) lanes) on \(InstructionSet.cpuDescription); \(threadCount(cores)) (\(CPUBudget.source))")
print(BLASCore.note)
report["isa"] = isa.rawValue
report["cpu"] = InstructionSet.cpuDescription
report["openblas_core"] = BLASCore.name

// 1. Calibration: the FMA peak of the path in use, and sgemm.
// The FMA peak of every path this CPU runs (the best of `runs` runs; min/median/max show how
// steady it read), then the active path's, which every "of peak" figure below divides by.
print("\nFMA peak, independent chains on every thread, best of \(runs) runs [min median max]:")
for set in InstructionSet.supported {
    try InstructionSet.use(set)
    let one = fmaPeak(threads: 1, runs: runs), all = fmaPeak(threads: cores, runs: runs)
    print("  \(pad(set.rawValue, 10)) 1 thread \(fmt(one.peak)) GFLOP/s [\(fmt(one.spread.min)) \(fmt(one.spread.median)) \(fmt(one.spread.max))], \(threadCount(cores)) \(fmt(all.peak)) GFLOP/s [\(fmt(all.spread.min)) \(fmt(all.spread.median)) \(fmt(all.spread.max))]")
    report["peak_gflops_\(set.rawValue)"] = all.peak
}
try InstructionSet.use(isa)
let peak1 = fmaPeak(threads: 1, runs: runs).peak, peakAll = fmaPeak(threads: cores, runs: runs).peak
let calN = 1024
let cal1 = sgemmCalibration(n: calN, threads: 1, runs: runs)
let calAll = sgemmCalibration(n: calN, threads: cores, runs: runs)
print("sgemm calibration (\(calN)^3, OpenBLAS 1 thread per block): 1 thread \(fmt(cal1.median)) GFLOP/s, \(threadCount(cores)) \(fmt(calAll.median)) GFLOP/s (\(fmt(100 * calAll.median / peakAll, 0))% of peak)")
report["peak_gflops_1t"] = peak1
report["peak_gflops_all"] = peakAll
report["sgemm_gflops_1t"] = cal1.median
report["sgemm_gflops_all"] = calAll.median
let calibration = Calibration(peak: peakAll, sgemm: calAll.median)

if onlyModel == nil {
// 2. Kernels on the stage shapes of Fashion-MNIST LruNet, batch 64.
var kernelReports: [[String: Any]] = []
/// Times kernel `k`, prints its row against `cal` (the calibrations of the threads it runs on),
/// with `note()` after it when given, and records it for the JSON report.
func reportKernel(_ k: KernelBench, repeats: Int, milliseconds: Bool = false, _ cal: Calibration, note: (() -> String)? = nil) {
    let t = k.secondsPerCall(runs: runs, repeats: repeats)
    let gmacs = Double(k.macs) / t / 1e9
    let time = milliseconds ? fmt(1e3 * t, 2) + " ms" : fmt(1e6 * t, 1) + " us"
    print("\(pad(k.name, 34)) \(pad(time, 10)) \(pad(fmt(gmacs, 2) + " GMAC/s", 14)) \(cal.fractions(2 * gmacs))" + (note.map { "; " + $0() } ?? ""))
    kernelReports.append(["name": k.name, "seconds": t, "gmacs": gmacs, "ratio_to_sgemm": 2 * gmacs / cal.sgemm, "ratio_to_peak": 2 * gmacs / cal.peak])
}
let onlySection = options.tiledBlocks ? "--tiled-blocks" : options.trainingBlocks ? "--training-blocks" : nil
if onlySection == nil { print("\n== kernels (batch 64, \(threadCount(cores))): GMAC/s and speed as a fraction of the FMA peak and of sgemm") }
for (planes, side) in [(64, 14), (128, 7), (256, 4), (512, 4)] where onlySection == nil {
    for k in KernelBench.stageKernels(planes: planes, side: side, batch: 64, threading: Threading(threads: cores)) {
        reportKernel(k, repeats: 5, calibration)
    }
}
for (planes, side) in [(24, 28), (32, 14), (64, 7)] where onlySection == nil {
    reportKernel(KernelBench.downsampling(planes: planes, side: side, batch: 64, threading: Threading(threads: cores)), repeats: 5, calibration)
}
for (channels, side, threads) in [(256, 4, 1)] + (cores > 1 ? [(256, 4, cores)] : []) + [(64, 7, 1)] where onlySection == nil {
    let k = KernelBench.densePointwise(channels: channels, side: side, batch: 1, threading: Threading(threads: threads))
    reportKernel(k, repeats: 200, threads == 1 ? Calibration(peak: peak1, sgemm: cal1.median) : calibration)
}
if onlySection != "--training-blocks" { print("\n== tiled reuse block (inference, 10 iterations, batch 64 and 1, \(threadCount(cores)))") }
for (planes, side, batch) in [(64, 14, 64), (128, 7, 64), (256, 4, 64), (512, 4, 64), (64, 14, 1), (128, 7, 1), (256, 4, 1), (512, 4, 1)]
    where onlySection != "--training-blocks" {
    let k = try KernelBench.tiledBlock(planes: planes, side: side, batch: batch, iterations: 10, threading: Threading(threads: cores))
    reportKernel(k, repeats: batch == 1 ? 20 : 2, milliseconds: true, calibration)
}
print("\n== reuse block in training (forward + backward, 10 iterations, batch 128, \(threadCount(cores))), with its op split")
for (planes, side) in [(64, 14), (128, 7), (256, 4), (512, 4)] where onlySection != "--tiled-blocks" {
    let k = try KernelBench.trainingBlock(planes: planes, side: side, batch: 128, iterations: 10, threading: Threading(threads: cores))
    reportKernel(k, repeats: 1, milliseconds: true, calibration) {
        let profile = OpProfile()
        k.context?.profile = profile
        _ = k.secondsPerCall(runs: 1, repeats: 1)
        return OpTimer.allCases.compactMap { kind in profile.seconds[kind].map { "\(kind.rawValue) \(fmt(100 * $0 / profile.total, 0))%" } }
            .joined(separator: ", ")
    }
}
report["kernels"] = kernelReports
if options.kernels || onlySection != nil { exit(0) }
}

// 3. Per model: inference at batch 1/64/256, training at batch 128, time split, scaling.
func randomImages(_ n: Int, _ c: Int, _ side: Int) -> [Float] {
    var rng = SplitMix64(seed: 42)
    return (0..<(n * c * side * side)).map { _ in rng.nextUniform() }
}

func inferenceSeconds(_ model: Network, batch: Int, side: Int, repeats: Int) throws -> Stat {
    let x = randomImages(batch, model.inputChannels, side)
    var y = [Float](repeating: 0, count: batch * model.classes)
    return try measure(runs: runs) {
        for _ in 0..<repeats {
            try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                try model.infer(xb.baseAddress!, batch: batch, channels: model.inputChannels, height: side, width: side, into: yb.baseAddress!)
            } }
        }
        blackHole(y[0])
    }
}

func trainSeconds(_ model: Network, batch: Int, side: Int, steps: Int, runs: Int = runs, warmup: Int = 1) throws -> Stat {
    let x = randomImages(batch, model.inputChannels, side)
    let labels = (0..<batch).map { Int32($0 % model.classes) }
    return try measure(runs: runs, warmup: warmup) {
        for s in 0..<steps {
            let r = try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                try model.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: batch, channels: model.inputChannels,
                                    height: side, width: side, optimizer: SGD(), learningRate: 0.01, seed: UInt64(s))
            } }
            blackHole(r.loss)
        }
    }
}

/// One thread against all cores: `pairs` pairs of `once()` (seconds of one run), one run on each
/// side back to back after a warm-up of each, so both see the same phase of a shared machine.
/// Returns the per-pair speedups and the median one-thread time.
func pairedScaling(_ model: Network, pairs: Int, _ once: () throws -> Double) rethrows -> (speedup: Stat, oneThread: Double) {
    var ratios: [Double] = [], ones: [Double] = []
    model.threading = Threading(threads: 1); _ = try once()
    model.threading = Threading(threads: cores); _ = try once()
    for _ in 0..<pairs {
        model.threading = Threading(threads: 1)
        let one = try once()
        model.threading = Threading(threads: cores)
        ratios.append(one / (try once())); ones.append(one)
    }
    return (Stat(ratios), Stat(ones).median)
}

/// The FMA peak on `threading`'s own worker pool, one short run: the threads that time the
/// workloads. (GCD's threads, which ``fmaPeak`` uses, linger after a run and compete with the
/// next region: runs right after it read up to 1.4x slower.)
func poolPeak(_ threading: Threading, iterations: Int = 2_000_000) -> Double {
    struct Args: Sendable { let rates: SharedMutable<Double>, iterations: Int }
    let rates = SharedMutable(UnsafeMutablePointer<Double>.allocate(capacity: threading.threads))
    defer { rates.base.deallocate() }
    // A pool that finds itself busy runs a region on the caller alone, leaving slots at zero
    // (a peak read at half); such a reading is taken again.
    for _ in 0..<4 {
        rates.base.initialize(repeating: 0, count: threading.threads)
        threading.pool.run(width: threading.threads, Args(rates: rates, iterations: iterations)) { a, p, _ in
            let t = now()
            let flop = lru_fma_peak(a.pointee.iterations)
            (a.pointee.rates + p).pointee = flop / (now() - t) / 1e9
        }
        if (0..<threading.threads).allSatisfy({ rates.base[$0] > 0 }) { break }
    }
    return (0..<threading.threads).reduce(0.0) { $0 + rates.base[$1] }
}

/// A workload as a fraction of the FMA peak, each of `pairs` runs divided by the mean of peak
/// readings taken on the same threads just before and just after it: a slow phase of a shared
/// machine then moves both sides of a ratio (a peak measured once at the start read 164 against
/// 195 GFLOP/s in runs minutes apart). `once()` returns one run's GFLOP/s.
func pairedWithPeak(_ threading: Threading, pairs: Int, _ once: () throws -> Double) rethrows -> Stat {
    _ = try once()
    var ratios: [Double] = []
    var before = poolPeak(threading)
    for _ in 0..<pairs {
        let g = try once()
        let after = poolPeak(threading)
        ratios.append(g / ((before + after) / 2))
        before = after
    }
    return Stat(ratios)
}

var modelReports: [[String: Any]] = []
for spec in specs {
    let model = try Network(config: spec.config, threading: Threading(threads: cores))
    model.initialise(seed: 1)
    let cost = try model.costReport(height: spec.side, width: spec.side)
    let flopPerImage = 2 * Double(cost.totalMACs)
    var r: [String: Any] = ["model": spec.name, "macs_per_image": cost.totalMACs]
    print("\n== \(spec.name): \(fmt(Double(cost.totalMACs) / 1e6, 2)) M MACs/image, \(cost.parameters) params")
    print("\(pad("workload", 26)) \(pad("images/s", 24)) \(pad("ms/batch", 10)) GFLOP/s  fraction of the calibrations")
    for batch in [1, 64, 256] {
        let repeats = batch == 1 ? 32 : 1
        let t = try inferenceSeconds(model, batch: batch, side: spec.side, repeats: repeats)
        let ips = Double(batch * repeats) / t.median
        let gf = ips * flopPerImage / 1e9
        print("\(pad("inference batch \(batch)", 26)) \(pad(fmt(ips, 0) + " [" + fmt(Double(batch * repeats) / t.max, 0) + "-" + fmt(Double(batch * repeats) / t.min, 0) + "]", 24)) \(pad(fmt(1000 * t.median / Double(repeats), 2), 10)) \(pad(fmt(gf), 8)) \(calibration.fractions(gf))")
        r["infer_b\(batch)_peak_fraction"] = gf / peakAll
        r["infer_b\(batch)_img_s"] = ips
        if batch == 1 { r["latency_b1_ms"] = 1000 * t.median / Double(repeats) }
    }
    let steps = spec.config.layerReuse > 4 ? 2 : 4
    let tt = try trainSeconds(model, batch: 128, side: spec.side, steps: steps)
    let tips = Double(128 * steps) / tt.median
    let tgf = tips * 3 * flopPerImage / 1e9          // backward ~ 2x forward
    print("\(pad("training batch 128", 26)) \(pad(fmt(tips, 0) + " [" + fmt(Double(128 * steps) / tt.max, 0) + "-" + fmt(Double(128 * steps) / tt.min, 0) + "]", 24)) \(pad(fmt(1000 * tt.median / Double(steps), 1), 10)) \(pad(fmt(tgf), 8)) \(calibration.fractions(tgf))")
    r["train_b128_img_s"] = tips
    r["train_b128_peak_fraction"] = tgf / peakAll
    // The peak time of one image's forward pass, for the batch-1 latency target (2.6x of it).
    let peakMs = 1000 * flopPerImage / (peakAll * 1e9)
    print("  at the FMA peak one image's forward takes \(fmt(peakMs, 3)) ms; batch-1 latency is \(fmt((r["latency_b1_ms"] as! Double) / peakMs, 1))x that")
    r["latency_b1_vs_peak_time"] = (r["latency_b1_ms"] as! Double) / peakMs

    // Time split per op kind. The fused blocks are one kernel; the layer-by-layer path shows
    // how the same work divides between the ops.
    let unfusedInference = {
        model.fusedReuseBlocks = false
        defer { model.fusedReuseBlocks = true }
        _ = try inferenceSeconds(model, batch: 256, side: spec.side, repeats: 1)
    }
    for (label, work) in [("inference b256", { _ = try inferenceSeconds(model, batch: 256, side: spec.side, repeats: 1) }),
                          ("inference b256 layer by layer", unfusedInference),
                          ("training b128", { _ = try trainSeconds(model, batch: 128, side: spec.side, steps: 1) })] as [(String, () throws -> Void)] {
        let profile = OpProfile()
        model.profile = profile
        try work()
        model.profile = nil
        let total = profile.total
        let parts = OpTimer.allCases.map { "\($0.rawValue) \(fmt(100 * (profile.seconds[$0] ?? 0) / total, 0))%" }
        print("  time split, \(label): " + parts.joined(separator: ", "))
        r["split_\(label.replacingOccurrences(of: " ", with: "_"))"] = Dictionary(uniqueKeysWithValues: OpTimer.allCases.map { ($0.rawValue, (profile.seconds[$0] ?? 0) / total) })
    }

    // What fusing the blocks buys, measured against the layer-by-layer path in the same run.
    model.fusedReuseBlocks = false
    let unfused = Double(256) / (try inferenceSeconds(model, batch: 256, side: spec.side, repeats: 1)).median
    model.fusedReuseBlocks = true
    let fused = r["infer_b256_img_s"] as! Double
    print("  fused reuse blocks vs layer by layer: inference b256 \(fmt(fused / unfused, 2))x (\(fmt(unfused, 0)) img/s layer by layer)")
    r["infer_b256_layer_by_layer_img_s"] = unfused
    r["fused_vs_layer_by_layer"] = fused / unfused

    // Single runs, for the paired measurements below: seconds per call.
    let x256 = randomImages(256, spec.config.inChannels, spec.side), x1 = randomImages(1, spec.config.inChannels, spec.side)
    var y = [Float](repeating: 0, count: 256 * spec.config.numClasses)
    func infer(_ x: [Float], _ batch: Int, repeats: Int) throws -> Double {
        let t = now()
        for _ in 0..<repeats {
            try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                try model.infer(xb.baseAddress!, batch: batch, channels: spec.config.inChannels, height: spec.side, width: spec.side,
                                into: yb.baseAddress!)
            } }
        }
        return (now() - t) / Double(repeats)
    }

    // Scaling: 1 thread vs all cores, in back-to-back pairs. Measured minutes apart, the two
    // sides saw different phases of this shared machine (readings from 1.5x to 2.1x).
    if cores > 1 {
        let inference = try pairedScaling(model, pairs: runs) { try infer(x256, 256, repeats: 1) }
        let latency = try pairedScaling(model, pairs: runs) { try infer(x1, 1, repeats: 32) }
        let training = try pairedScaling(model, pairs: runs) { try trainSeconds(model, batch: 128, side: spec.side, steps: steps, runs: 1, warmup: 0).median }
        func spread(_ s: Stat) -> String { "\(fmt(s.median, 2))x [\(fmt(s.min, 2))-\(fmt(s.max, 2))]" }
        print("  scaling \(cores) threads vs 1, median of \(runs) back-to-back pairs: inference b256 \(spread(inference.speedup)) (\(fmt(256 / inference.oneThread, 0)) img/s on 1), training b128 \(spread(training.speedup)) (\(fmt(Double(128 * steps) / training.oneThread, 0)) img/s on 1)")
        print("  batch-1 latency: \(fmt(1000 * latency.oneThread, 2)) ms on 1 thread, \(fmt(1000 * latency.oneThread / latency.speedup.median, 2)) ms on \(cores) (\(spread(latency.speedup)))")
        r["latency_b1_ms_1t"] = 1000 * latency.oneThread
        r["scaling_infer"] = inference.speedup.median
        r["scaling_train"] = training.speedup.median
        r["scaling_latency_b1"] = latency.speedup.median
    }
    if spec.name == "fashionmnist-lru10" {
        // The targets, paired with the peak run by run.
        let b256 = try pairedWithPeak(model.threading, pairs: runs) { 256 * flopPerImage / (try infer(x256, 256, repeats: 1)) / 1e9 }
        // Latency as a multiple of the peak time is the inverse of the fraction of peak.
        let b1 = try pairedWithPeak(model.threading, pairs: runs) { flopPerImage / (try infer(x1, 1, repeats: 32)) / 1e9 }
        let train = try pairedWithPeak(model.threading, pairs: runs) {
            3 * flopPerImage * 128 / (try trainSeconds(model, batch: 128, side: spec.side, steps: 1, runs: 1, warmup: 0).median) / 1e9
        }
        r["paired_targets"] = ["infer_b256_peak_fraction": ["median": b256.median, "min": b256.min, "max": b256.max],
                               "latency_b1_vs_peak_time": ["median": 1 / b1.median, "min": 1 / b1.max, "max": 1 / b1.min],
                               "train_b128_peak_fraction": ["median": train.median, "min": train.min, "max": train.max]]
    }
    modelReports.append(r)
}
report["models"] = modelReports
// The performance issue's targets for lru10, as fractions of this run's FMA peak.
if let lru10 = modelReports.first(where: { $0["model"] as? String == "fashionmnist-lru10" }) {
    let b256 = lru10["infer_b256_peak_fraction"] as! Double, train = lru10["train_b128_peak_fraction"] as! Double
    let b1 = lru10["latency_b1_vs_peak_time"] as! Double
    func mark(_ ok: Bool) -> String { ok ? "met" : "not met" }
    print("\n== lru10 against its targets (\(isa), \(threadCount(cores)), FMA peak \(fmt(peakAll)) GFLOP/s)")
    // Issue 23's targets.
    print("  batched inference b256: \(fmt(100 * b256))% of peak, \(fmt(b256 / 0.6, 2))x the target of 60% (\(mark(b256 >= 0.6)))")
    print("  batch-1 latency: \(fmt(b1, 2))x the peak time, \(fmt(2.5 / b1, 2))x the target of 2.5x (\(mark(b1 <= 2.5)))")
    print("  training b128: \(fmt(100 * train))% of peak, \(fmt(train / 0.35, 2))x the target of 35% (\(mark(train >= 0.35)))")
    if let paired = lru10["paired_targets"] as? [String: [String: Double]] {
        // Each run against the peak read on the same threads just before and after it.
        let b256 = paired["infer_b256_peak_fraction"]!, b1 = paired["latency_b1_vs_peak_time"]!, train = paired["train_b128_peak_fraction"]!
        print("  paired with the peak run by run (median of \(runs) [min-max]):")
        print("    batched inference b256: \(fmt(100 * b256["median"]!))% [\(fmt(100 * b256["min"]!))-\(fmt(100 * b256["max"]!))], \(fmt(b256["median"]! / 0.6, 2))x the target (\(mark(b256["median"]! >= 0.6)))")
        print("    batch-1 latency: \(fmt(b1["median"]!, 2))x [\(fmt(b1["min"]!, 2))-\(fmt(b1["max"]!, 2))], \(fmt(2.5 / b1["median"]!, 2))x the target (\(mark(b1["median"]! <= 2.5)))")
        print("    training b128: \(fmt(100 * train["median"]!))% [\(fmt(100 * train["min"]!))-\(fmt(100 * train["max"]!))], \(fmt(train["median"]! / 0.35, 2))x the target (\(mark(train["median"]! >= 0.35)))")
    }
}

// 4. The reuse sweep: what N costs and what the parameter cache saves.
if onlyModel != nil { exit(0) }
print("\n== reuse sweep, Fashion-MNIST LruNet, batch 64 inference")
print("\(pad("N", 4)) \(pad("params", 10)) \(pad("unrolled", 11)) \(pad("conv MB fetched", 16)) \(pad("unrolled MB", 12)) \(pad("MMACs", 8)) \(pad("ms/image", 9)) vs N=1")
var sweep: [[String: Any]] = []
var base: Double = 0
for n in (quick ? [1, 2, 4, 10, 14] : Array(1...14)) {
    let model = try Network(config: .lrunet(numClasses: 10, layerReuse: n, inChannels: 1), threading: Threading(threads: cores))
    model.initialise(seed: 1)
    let cost = try model.costReport(height: 28, width: 28)
    let t = try inferenceSeconds(model, batch: 64, side: 28, repeats: 1)
    let ms = 1000 * t.median / 64
    if n == 1 { base = ms }
    print("\(pad("\(n)", 4)) \(pad("\(cost.parameters)", 10)) \(pad("\(cost.unrolledParameters)", 11)) \(pad(fmt(Double(cost.convBytesFetched) / 1e6, 2), 16)) \(pad(fmt(Double(cost.convBytesUnrolled) / 1e6, 2), 12)) \(pad(fmt(Double(cost.totalMACs) / 1e6, 2), 8)) \(pad(fmt(ms, 3), 9)) \(fmt(ms / base, 2))x")
    sweep.append(["n": n, "params": cost.parameters, "unrolled_params": cost.unrolledParameters,
                  "conv_bytes_fetched": cost.convBytesFetched, "conv_bytes_unrolled": cost.convBytesUnrolled,
                  "macs": cost.totalMACs, "ms_per_image": ms, "time_vs_n1": ms / base])
}
report["reuse_sweep"] = sweep

if let path = options.json {
    let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: path))
    print("\nwrote \(path)")
}
