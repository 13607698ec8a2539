import ArgumentParser
import LruNet

/// What `lrunet-bench` is asked to do. Without a mode flag it runs the full benchmark (`make bench`).
struct BenchOptions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lrunet-bench",
        abstract: "The numbers behind make bench, the CI performance check and make bench-compare.",
        discussion: """
        Every speed is also given as a ratio to something measured in the same run (the FMA \
        peak of the kernel path in use, sgemm, N = 1, one thread): absolute times drift on a \
        shared machine and differ between CPUs.

        Examples:
          lrunet-bench                         the full benchmark (make bench)
          lrunet-bench --model fashionmnist-lru10
                                               one model's section, while tuning
          lrunet-bench --kernels               only the kernel sections
          lrunet-bench --check Benchmarks/perf-baseline.json
                                               the CI regression check (make test-perf)
          lrunet-bench --write-baseline Benchmarks/perf-baseline.json
                                               record this CPU's baseline
          lrunet-bench --compare RESULTS.json --weights CKPT
                                               ratios to ONNX Runtime and PyTorch
        """)

    @Flag(help: "Fewer runs and a shorter reuse sweep.")
    var quick = false
    @Option(help: ArgumentHelp("Threads for the engine's kernels (default: the CPU budget).", valueName: "n"))
    var threads: Int?
    @Option(help: ArgumentHelp("Also write the figures as JSON.", valueName: "file"))
    var json: String?
    @Option(help: ArgumentHelp("Only this model's section: fashionmnist-lru1, fashionmnist-lru10 or cifar10-lru14.", valueName: "name"))
    var model: String?
    @Flag(help: "Only the kernel sections.")
    var kernels = false
    @Flag(help: "Only the tiled reuse block section.")
    var tiledBlocks = false
    @Flag(help: "Only the reuse block training section.")
    var trainingBlocks = false

    @Option(help: ArgumentHelp("Run the performance regression check against this baseline file; exit 1 on a regression.", valueName: "baseline.json"))
    var check: String?
    @Flag(help: "With --check: compare with the reference build even where this CPU has a baseline.")
    var againstReference = false
    @Option(help: ArgumentHelp("With --check: also check this example consumer's speed against --lrunet's.", valueName: "binary"))
    var consumer: String?
    @Option(help: ArgumentHelp("With --consumer: the lrunet binary to compare with.", valueName: "binary"))
    var lrunet: String?
    @Option(help: ArgumentHelp("A checkpoint (with --consumer or --compare).", valueName: "file"))
    var weights: String?
    @Option(help: ArgumentHelp("Measure this CPU's baseline and write it into this file.", valueName: "baseline.json"))
    var writeBaseline: String?
    @Option(help: ArgumentHelp("Measure these probes (comma-separated names) and print each as a JSON line.", valueName: "names"))
    var probes: String?

    @Option(help: ArgumentHelp("Print ratios to ONNX Runtime and PyTorch from this results file (make bench-compare).", valueName: "file"))
    var compare: String?
    @Flag(help: "Each parallel region's items and threads at 16, 32 and 64 threads.")
    var parallelism = false
    @Option(help: ArgumentHelp("With --parallelism: also write the table as Markdown.", valueName: "file"))
    var markdown: String?

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
        if compare != nil && weights == nil { throw ValidationError("--compare needs --weights") }
        if consumer != nil && (lrunet == nil || weights == nil) { throw ValidationError("--consumer needs --lrunet and --weights") }
        if againstReference && check == nil { throw ValidationError("--against-reference goes with --check") }
    }
}
