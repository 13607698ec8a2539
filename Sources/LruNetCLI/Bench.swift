import ArgumentParser
import Foundation
import LruNet

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a checkpoint on this machine: inference at each batch size, optionally a training step.",
        discussion: """
        Inputs are random images of the checkpoint's size. For each batch size, one untimed pass \
        plans the buffers and warms up. Then each of --runs runs repeats the batch until it has \
        taken --min-time seconds. The median run counts, and the slowest and fastest are shown in \
        brackets. GFLOP/s counts 2 x MACs; a training step counts 3 x the forward.

        Give the thread count with --threads. On a shared or virtual machine one run can differ \
        by 20% from the next, so compare settings in runs next to each other. \
        `make bench` (lrunet-bench) is the full benchmark: sgemm calibration, kernel tables, \
        scaling, and the reuse sweep.

        Examples:
          lrunet bench --weights fashionmnist-lru10-09346
          lrunet bench --weights fashionmnist-lru10-09346 --batch 1 --threads 1
          lrunet bench --weights cifar10-lru14-08934 --batch 32 --train
        """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var format: OutputOptions

    @Option(help: ArgumentHelp("Batch sizes to time, comma-separated.", valueName: "list"))
    var batch: String = "1,64,256"

    @Option(help: "Timed runs per batch size; the median counts.")
    var runs: Int = 5

    @Option(help: ArgumentHelp("Least seconds per run (short batches are repeated).", valueName: "seconds"))
    var minTime: Double = 0.2

    @Flag(help: "Also time a training step (forward, backward, SGD update) at --train-batch.")
    var train = false

    @Option(help: "Batch size of the timed training step.")
    var trainBatch: Int = 128

    @Option(help: "Input side in pixels (default: 28 for Fashion-MNIST checkpoints, 32 otherwise).")
    var size: Int?

    @Flag(help: "After each batch size, print where its time goes, per kind of op and per layer.")
    var profile = false

    @Option(help: ArgumentHelp("With --profile: how many of the slowest layers to list (0: all).", valueName: "n"))
    var profileLayers = 12

    func validate() throws {
        guard let sizes = Self.batchSizes(batch) else {
            throw ValidationError("--batch must be a comma-separated list of sizes from 1 to 4096, such as 1,64,256")
        }
        guard !sizes.isEmpty else { throw ValidationError("--batch names no batch size") }
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be between 1 and 100") }
        guard profileLayers >= 0 else { throw ValidationError("--profile-layers must not be negative") }
        guard minTime >= 0, minTime <= 60 else { throw ValidationError("--min-time must be between 0 and 60 seconds") }
        guard (1...4096).contains(trainBatch) else { throw ValidationError("--train-batch must be between 1 and 4096") }
        if let size { guard (4...512).contains(size) else { throw ValidationError("--size must be between 4 and 512") } }
    }

    static func batchSizes(_ list: String) -> [Int]? {
        let parts = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ $0 != nil && (1...4096).contains($0!) }) else { return nil }
        return parts.map { $0! }
    }

    func run() throws {
        try reportingErrors {
            let (net, path, meta) = try model.load()
            let side = size ?? inputSide(meta)
            let c = net.inputChannels, classes = net.classes
            let macs = Double(try net.costReport(height: side, width: side).totalMACs)
            format.text("\((path as NSString).lastPathComponent): \(net.summary + ", \(net.inputChannels) input channel(s), \(net.classes) classes"), input \(c)x\(side)x\(side), "
                  + String(format: "%.2f M MACs/image", macs / 1e6))
            format.text(describeMachine(threads: net.threading.threads))
            var rows: [[String: Any]] = []
            var rng = SplitMix64(seed: 42)
            for n in Self.batchSizes(batch)! {
                let x = (0..<(n * c * side * side)).map { _ in rng.nextUniform() }
                var y = [Float](repeating: 0, count: n * classes)
                let t = try time {
                    try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                        try net.infer(xb.baseAddress!, batch: n, channels: c, height: side, width: side, into: yb.baseAddress!)
                    } }
                }
                var row = report("inference batch \(n)", images: n, seconds: t, flopsPerImage: 2 * macs, unit: "ms/batch")
                let memory = net.activationBytes
                format.text(String(format: "  activations: %.2f MB in one arena by liveness (%.2f MB as separate buffers)",
                                   Double(memory.arena) / 1e6, Double(memory.separate) / 1e6))
                let alone = net.layersOnOneThread
                if alone.count > 0 {
                    format.text("  threads: \(alone.count) of \(alone.of) layers on one thread, the rest on \(net.threading.threads) (timed when planned)")
                }
                row["layers_on_one_thread"] = alone.count
                row["activation_bytes"] = memory.arena
                row["activation_bytes_separate"] = memory.separate
                rows.append(row)
                if profile {
                    let p = OpProfile()
                    net.profile = p
                    // Enough passes for a fifth of a second, so a slow moment of the host averages out.
                    var passes = 0
                    let start = Date()
                    repeat {
                        try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                            try net.infer(xb.baseAddress!, batch: n, channels: c, height: side, width: side, into: yb.baseAddress!)
                        } }
                        passes += 1
                    } while passes < 3 || p.total < 0.2
                    let wall = Date().timeIntervalSince(start)
                    net.profile = nil
                    format.text("  time split: " + OpTimer.allCases.compactMap { k in
                        p.seconds[k].map { String(format: "%@ %.0f%%", k.rawValue, 100 * $0 / p.total) }
                    }.joined(separator: ", "))
                    let layers = p.layers, total = layers.reduce(0) { $0 + $1.seconds }
                    format.text(String(format: "  profiled: %.2f ms per pass, %.0f%% of it in the timed ops (the rest: starting them, chunking, the caller)",
                                       1e3 * wall / Double(passes), 100 * p.total / wall))
                    format.text("  slowest layers (of \(layers.count)): share of the pass, GFLOP/s")
                    for l in layers.sorted(by: { $0.seconds > $1.seconds }).prefix(profileLayers > 0 ? profileLayers : layers.count) {
                        format.text(String(format: "    %5.1f%%  %7.1f  %@ (%@) -> %dx%dx%d", 100 * l.seconds / total,
                                           2 * Double(l.macsPerImage * n * passes) / l.seconds / 1e9, l.name, l.op,
                                           l.output.channels, l.output.height, l.output.width))
                    }
                }
            }
            if train {
                let n = trainBatch
                let x = (0..<(n * c * side * side)).map { _ in rng.nextUniform() }
                let labels = (0..<n).map { Int32($0 % classes) }
                var step: UInt64 = 0
                let t = try time {
                    step += 1
                    _ = try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                        try net.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: n, channels: c, height: side,
                                          width: side, optimizer: SGD(), learningRate: 0.01, seed: step)
                    } }
                }
                var row = report("training batch \(n)", images: n, seconds: t, flopsPerImage: 6 * macs, unit: "ms/step")
                let memory = try net.gradientMemory(batch: n, height: side, width: side)
                format.text(String(format: "  input gradients: %.2f MB in one arena by liveness (%.2f MB as separate buffers)",
                                   Double(memory.arenaBytes) / 1e6, Double(memory.separateBytes) / 1e6))
                row["gradient_bytes"] = memory.arenaBytes
                row["gradient_bytes_separate"] = memory.separateBytes
                rows.append(row)
            }
            var record = modelRecord(net, path: path, metadata: meta)
            record["macs_per_image"] = macs
            record["rows"] = rows
            try format.emit(record)
        }
    }

    /// Seconds per call: one warm-up call, then the median, fastest and slowest of `runs` runs.
    private func time(_ body: () throws -> Void) throws -> (median: Double, min: Double, max: Double) {
        try body()
        var perCall: [Double] = []
        for _ in 0..<runs {
            var calls = 0
            let start = Date()
            repeat { try body(); calls += 1 } while Date().timeIntervalSince(start) < minTime
            perCall.append(Date().timeIntervalSince(start) / Double(calls))
        }
        perCall.sort()
        let m = perCall.count
        let median = m % 2 == 1 ? perCall[m / 2] : (perCall[m / 2 - 1] + perCall[m / 2]) / 2
        return (median, perCall[0], perCall[m - 1])
    }

    /// Prints one workload's line and returns it as a JSON row.
    private func report(_ what: String, images: Int, seconds t: (median: Double, min: Double, max: Double),
                        flopsPerImage: Double, unit: String) -> [String: Any] {
        let rate = Double(images) / t.median
        let spread = String(format: "[%.0f-%.0f]", Double(images) / t.max, Double(images) / t.min)
        format.text(what.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + String(format: "%8.0f img/s ", rate) + spread.padding(toLength: 14, withPad: " ", startingAt: 0)
                    + String(format: "%9.2f %@  %6.1f GFLOP/s", 1000 * t.median, unit, rate * flopsPerImage / 1e9))
        return ["workload": what, "images_per_second": rate, "images_per_second_min": Double(images) / t.max,
                "images_per_second_max": Double(images) / t.min, "ms": 1000 * t.median, "gflops": rate * flopsPerImage / 1e9]
    }
}
