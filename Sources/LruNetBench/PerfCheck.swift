import Foundation
import LruNet

/// The CI performance regression check.
///
/// Each probe (a few key kernels, whole reused blocks, the lru10 forward, an lru2 training step)
/// is measured as a ratio of its throughput to the FMA peak of the kernel path in use, in 7
/// (calibration, probe) pairs a few milliseconds apart; the median pair counts. A slower or busier
/// machine slows both sides, so the ratio holds; a slower kernel lowers it.
///
/// What the ratio is compared with depends on the CPU, because the same kernel reaches a
/// different fraction of the peak on an AMD and an Intel core (docs/performance.md):
/// - **A CPU with a recorded baseline** (vendor, family and model, and the kernel path): the
///   committed ratios of that CPU. Fails when a probe is more than `tolerance` below.
/// - **Any other CPU**: the reference build, the commit the baseline file names, built from this
///   clone's history and measured in the same run, alternating with this build. Fails when a
///   probe's ratio is more than `tolerance` below the reference's. An unchanged tree measures
///   itself against itself, so it passes on a machine the check has never seen.
/// A failing probe is measured again after a pause, up to `attempts` times: a neighbour on a
/// shared machine can slow a memory-bound kernel for seconds, but a real regression fails each time.
///
/// Also fails when the example consumer (`Examples/Classify`, a plain `swift build -c release`
/// of a package that imports LruNet) runs below 0.9x the speed of `lrunet eval` in the same run.
enum PerfCheck {
    static let tolerance = 0.30
    static let consumerFloor = 0.9
    static let attempts = 6

    struct Metric: Codable { let name: String; let ratio: Double; let detail: String }

    /// One measurement that can be repeated: a kernel or the whole forward, with its own calibration.
    struct Probe { let name: String; let measure: () throws -> Metric }

    /// The CPU a baseline belongs to: vendor, family and model (the flags do not matter).
    static var cpuKey: String {
        String(InstructionSet.cpuDescription.split(separator: ":").first ?? "unknown CPU")
    }

    static func probes(threads: Int) throws -> [Probe] {
        let threading = Threading(threads: threads)
        /// The FMA peak on every thread (one call of about 10 ms per thread, self-timed).
        func calibration() -> Double { fmaPeak(threads: threads, runs: 1).peak }
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
        /// GFLOP/s of a kernel timed over enough calls for about 2 ms: a memory-bound kernel of
        /// 50 us timed over 5 calls read anywhere from 0.2x to 1x its speed (wake-ups, neighbours).
        func kernelGflops(_ k: KernelBench, minRepeats: Int) -> Double {
            let once = k.secondsPerCall(runs: 1, repeats: 1)
            let repeats = min(max(minRepeats, Int((2e-3 / max(once, 1e-7)).rounded(.up))), 400)
            return 2 * Double(k.macs) / k.secondsPerCall(runs: 1, repeats: repeats) / 1e9
        }
        func metric(_ name: String, _ r: (ratio: Double, gflops: Double, calibration: Double)) -> Metric {
            Metric(name: name, ratio: r.ratio, detail: String(format: "%.1f GFLOP/s vs peak %.1f", r.gflops, r.calibration))
        }
        var probes: [Probe] = []
        // Stage 1 at batch 16 keeps its working set near L2 size: at batch 64 it lives in the
        // shared L3, where neighbours make its timing swing.
        let kernels = KernelBench.stageKernels(planes: 64, side: 14, batch: 16, threading: threading)
            + KernelBench.stageKernels(planes: 512, side: 4, batch: 64, threading: threading)
        for k in kernels {
            probes.append(Probe(name: k.name) { metric(k.name, pairedRatio { kernelGflops(k, minRepeats: 5) }) })
        }
        // Whole reused blocks, tile by tile, on the first and last stage shapes.
        for (planes, side, batch) in [(64, 14, 16), (512, 4, 64)] {
            let k = try KernelBench.tiledBlock(planes: planes, side: side, batch: batch, iterations: 4, threading: threading)
            probes.append(Probe(name: k.name) { metric(k.name, pairedRatio { kernelGflops(k, minRepeats: 2) }) })
        }
        // Training's fused depthwise + BatchNorm kernels, forward and backward, on the first stage shape.
        do {
            let k = KernelBench.depthwiseBatchNormTraining(planes: 64, side: 14, batch: 16, threading: threading)
            probes.append(Probe(name: k.name) { metric(k.name, pairedRatio { kernelGflops(k, minRepeats: 3) }) })
        }
        // The whole lru10 forward at batch 64 and at batch 1, and an lru2 training step.
        var rng = SplitMix64(seed: 9)
        let x = (0..<(64 * 28 * 28)).map { _ in rng.nextUniform() }
        let labels = (0..<64).map { Int32($0 % 10) }
        var y = [Float](repeating: 0, count: 64 * 10)
        let lru10 = try Network(config: .lrunet(numClasses: 10, layerReuse: 10, inChannels: 1), threading: threading)
        lru10.initialise(seed: 1)
        let lru2 = try Network(config: .lrunet(numClasses: 10, layerReuse: 2, inChannels: 1), threading: threading)
        lru2.initialise(seed: 1)
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
        let lru10Flops = 2 * Double(try lru10.costReport(height: 28, width: 28).totalMACs)
        let lru2Flops = 3 * 2 * Double(try lru2.costReport(height: 28, width: 28).totalMACs)   // backward ~ 2x forward
        for (name, images, repeats, flopsPerImage, work) in [
            ("lru10 forward b64", 64, 1, lru10Flops, { try forward(64) }),
            ("lru10 forward b1", 1, 16, lru10Flops, { try forward(1) }),
            ("lru2 training step b64", 64, 1, lru2Flops, { try trainStep() }),
        ] as [(String, Int, Int, Double, () throws -> Void)] {
            probes.append(Probe(name: name) {
                try work()
                let r = try pairedRatio {
                    let t = now(); for _ in 0..<repeats { try work() }
                    return Double(images * repeats) * flopsPerImage / (now() - t) / 1e9
                }
                return Metric(name: name, ratio: r.ratio, detail: String(format: "%.0f img/s, %.1f GFLOP/s vs peak %.1f",
                                                                          r.gflops * 1e9 / flopsPerImage, r.gflops, r.calibration))
            })
        }
        return probes
    }

    /// `lrunet-bench --probes`: measures the named probes (all when `names` is empty) once each
    /// and prints one JSON object per line. The reference comparison runs this in both builds.
    static func printProbes(threads: Int, names: [String]) throws {
        let all = try probes(threads: threads).filter { names.isEmpty || names.contains($0.name) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for p in all {
            _ = try p.measure()   // a fresh process: each probe's threads, buffers and caches warm first
            print(String(decoding: try encoder.encode(try p.measure()), as: UTF8.self))
        }
    }

    // MARK: - The baseline file

    struct BaselineFile: Codable {
        /// The commit whose build a CPU without a baseline is compared with, in the same run.
        var referenceCommit: String
        /// Per CPU (``cpuKey``), per kernel path: the probes' ratios to the FMA peak.
        var cpus: [String: [String: PathBaseline]]
        enum CodingKeys: String, CodingKey { case referenceCommit = "reference_commit", cpus }
    }
    struct PathBaseline: Codable {
        var machine: String
        var ratiosToPeak: [String: Double]
        enum CodingKeys: String, CodingKey { case machine, ratiosToPeak = "ratios_to_peak" }
    }

    static func readBaseline(_ path: String) throws -> BaselineFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("\(path): no such file") }
        do { return try JSONDecoder().decode(BaselineFile.self, from: data) }
        catch { throw BenchError("\(path): not a baseline file (\(error))") }
    }

    /// The baseline: each probe's median over five rounds of all probes (a round takes about ten
    /// seconds, so the five see different phases of a shared machine rather than one), written
    /// into this CPU's and this path's section (other CPUs' sections and the reference commit are kept).
    static func writeBaseline(threads: Int, to path: String) throws {
        let all = try probes(threads: threads)
        let rounds = try (0..<5).map { _ in try all.map { try $0.measure() } }
        let metrics = all.indices.map { i in rounds.map { $0[i] }.sorted { $0.ratio < $1.ratio }[2] }
        var file = (try? readBaseline(path)) ?? BaselineFile(referenceCommit: "", cpus: [:])
        file.cpus[cpuKey, default: [:]][InstructionSet.active.rawValue] = PathBaseline(
            machine: machineDescription(threads: threads),
            ratiosToPeak: Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, ($0.ratio * 1e4).rounded() / 1e4) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(file).write(to: URL(fileURLWithPath: path))
        print("wrote the \(InstructionSet.active) baseline of \(cpuKey) to \(path)")
    }

    // MARK: - The check

    /// Checks against this CPU's baseline, or against the reference build when there is none (or
    /// when `forceReference`); returns false if any probe dropped by more than the tolerance.
    static func check(threads: Int, baselinePath: String, forceReference: Bool) throws -> Bool {
        let file = try readBaseline(baselinePath)
        let set = InstructionSet.active
        if !forceReference, let section = file.cpus[cpuKey]?[set.rawValue] {
            print("performance check of the \(set) kernels on \(cpuKey), against its baseline in \(baselinePath) (\(section.machine)); fail below \(Int(100 * (1 - tolerance)))% of it")
            let all = try probes(threads: threads)
            let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
            _ = try all.first?.measure()   // the worker threads and buffers warm
            return try compare(all.map(\.name)) { name, _ in (try byName[name]!.measure(), section.ratiosToPeak[name]) }
        }
        print("performance check of the \(set) kernels on \(cpuKey): \(forceReference ? "asked for" : "no baseline recorded for this CPU and path, so") a comparison with the reference build of \(file.referenceCommit.prefix(12)) measured in this run; fail below \(Int(100 * (1 - tolerance)))% of it")
        guard let reference = try buildReference(commit: file.referenceCommit) else { return true }
        let ourselves = CommandLine.arguments[0]
        let threadArgs = ["--threads", "\(threads)"]
        /// Alternates the two builds, `rounds` times each, and keeps each side's median per probe.
        func measurePair(_ names: [String], rounds: Int) throws -> (ours: [String: Metric], theirs: [String: Metric]) {
            var ours: [String: [Metric]] = [:], theirs: [String: [Metric]] = [:]
            for round in 0..<rounds {
                let args = ["--probes", names.joined(separator: ",")] + threadArgs
                let order = round % 2 == 0 ? [(ourselves, true), (reference, false)] : [(reference, false), (ourselves, true)]
                for (binary, isOurs) in order {
                    for m in try runProbes(binary, args) {
                        if isOurs { ours[m.name, default: []].append(m) } else { theirs[m.name, default: []].append(m) }
                    }
                }
            }
            func median(_ d: [String: [Metric]]) -> [String: Metric] { d.mapValues { $0.sorted { $0.ratio < $1.ratio }[$0.count / 2] } }
            return (median(ours), median(theirs))
        }
        let names = try probes(threads: threads).map(\.name)
        let first = try measurePair(names, rounds: 3)
        // Noise only ever slows a probe, so the reference's best reading so far is its speed.
        var bestReference = first.theirs.mapValues(\.ratio)
        return try compare(names) { name, attempt in
            if attempt == 1, let m = first.ours[name] { return (m, bestReference[name]) }
            let again = try measurePair([name], rounds: 3)
            guard let m = again.ours[name] else { throw BenchError("the probe '\(name)' printed nothing") }
            if let r = again.theirs[name]?.ratio { bestReference[name] = max(bestReference[name] ?? 0, r) }
            return (m, bestReference[name])
        }
    }

    /// Measures each probe, re-measuring a failing one after a pause, and prints it against its
    /// expected ratio (nil: a new probe, only printed). Returns whether all passed.
    private static func compare(_ names: [String], _ measure: (_ name: String, _ attempt: Int) throws -> (Metric, Double?)) throws -> Bool {
        var ok = true
        for name in names {
            for attempt in 1...attempts {
                if attempt > 1 { Thread.sleep(forTimeInterval: 5) }   // let a neighbour's burst pass
                let (m, expected) = try measure(name, attempt)
                guard let b = expected else { print("  NEW   \(m.name): ratio \(String(format: "%.3f", m.ratio)) (\(m.detail))"); break }
                let rel = m.ratio / b
                let pass = rel >= 1 - tolerance
                let last = pass || attempt == attempts
                let tag = pass ? "ok  " : (last ? "FAIL" : "slow")
                print("  \(tag) \(m.name): ratio \(String(format: "%.3f", m.ratio)), expected \(String(format: "%.3f", b)), \(String(format: "%.0f", 100 * rel))% (\(m.detail))\(pass || last ? "" : ", measuring again")")
                if last { ok = ok && pass; break }
            }
        }
        print(ok ? "performance check: passed" : "performance check: FAILED (a probe is more than \(Int(100 * tolerance))% slower relative to the FMA peak)")
        return ok
    }

    /// Builds the reference commit's `lrunet-bench` (Benchmarks/reference.sh) and returns its path;
    /// nil, with the reason printed, when this clone cannot (no such commit in its history).
    private static func buildReference(commit: String) throws -> String? {
        let script = "Benchmarks/reference.sh"
        let (status, output) = try capture("/bin/bash", [script, commit])
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        if status == 3 {
            print("performance check: SKIPPED: \(lines.last ?? "") (record a baseline for this CPU with make bench-baseline)")
            return nil
        }
        guard status == 0, let path = lines.last else { throw BenchError("\(script) \(commit) failed") }
        return String(path)
    }

    private static func runProbes(_ binary: String, _ arguments: [String]) throws -> [Metric] {
        let (status, output) = try capture(binary, arguments)
        guard status == 0 else { throw BenchError("\(binary) \(arguments.joined(separator: " ")) exited with \(status)") }
        return try output.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Metric.self, from: Data($0)) }
    }

    /// Runs `executable` and returns its exit status and standard output; its standard error
    /// passes through, or is dropped when `quiet`.
    private static func capture(_ executable: String, _ arguments: [String], quiet: Bool = false,
                                environment: [String: String] = [:]) throws -> (status: Int32, output: Data) {
        let process = Process(), pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = pipe
        if quiet { process.standardError = FileHandle.nullDevice }
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    // MARK: - The consumer

    /// The example consumer against `lrunet eval` on the same images, in `pairs` back-to-back
    /// pairs (which runs first alternates); the median of the pairs' ratios counts, so a slow
    /// phase of the machine slows both halves of a pair. Returns false below ``consumerFloor``.
    static func checkConsumer(classify: String, lrunet: String, weights: String, pairs: Int = 5) throws -> Bool {
        func imagesPerSecond(_ executable: String, _ arguments: [String], pattern: String) throws -> Double {
            // Both with OpenBLAS's own kernels: lrunet would otherwise restart with faster ones where
            // OpenBLAS misjudges the CPU, which a library user's program does not (BLASCore).
            let (status, output) = try capture(executable, arguments, quiet: true, environment: ["LRUNET_BLAS_CORE": "off"])
            let out = String(decoding: output, as: UTF8.self)
            guard status == 0, let range = out.range(of: pattern, options: .regularExpression) else {
                throw BenchError("\(executable) failed or printed no speed: \(out)")
            }
            return Double(out[range].split(separator: " ")[0])!
        }
        func consumer() throws -> Double { try imagesPerSecond(classify, [weights, "--limit", "4096"], pattern: "[0-9]+ images/s") }
        func ours() throws -> Double { try imagesPerSecond(lrunet, ["eval", "--weights", weights, "--limit", "4096"], pattern: "[0-9]+ images/s") }
        var ratios: [Double] = [], consumerRates: [Double] = [], ourRates: [Double] = []
        for pair in 0..<pairs {
            var c = 0.0, o = 0.0
            if pair % 2 == 0 { c = try consumer(); o = try ours() } else { o = try ours(); c = try consumer() }
            ratios.append(c / o); consumerRates.append(c); ourRates.append(o)
        }
        let ratio = ratios.sorted()[pairs / 2], ok = ratio >= consumerFloor
        print(String(format: "consumer check: Examples/Classify against lrunet eval, median of %d back-to-back pairs: %.2fx (pairs %@; images/s %@ vs %@), %@ (floor %.1fx)",
                     pairs, ratio, ratios.map { String(format: "%.2f", $0) }.joined(separator: " "),
                     consumerRates.map { String(format: "%.0f", $0) }.joined(separator: " "),
                     ourRates.map { String(format: "%.0f", $0) }.joined(separator: " "), ok ? "ok" : "FAILED", consumerFloor))
        return ok
    }
}

/// A one-line error of the benchmark tool.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
