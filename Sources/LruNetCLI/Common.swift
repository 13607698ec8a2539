import ArgumentParser
import Foundation
import LruNet

/// Options every command that loads a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Checkpoint: a .safetensors or PyTorch .t7 path, or a pretrained name.", valueName: "file"))
    var weights: String

    @Option(help: "Threads for OpenBLAS and the engine's kernels (0 = all cores).")
    var threads: Int = 0

    func validate() throws {
        guard threads >= 0 && threads <= 256 else { throw ValidationError("--threads must be between 0 and 256") }
    }

    func load() throws -> (model: Network, path: String, metadata: [String: String]) {
        let path = Pretrained.resolve(weights)
        // The library's one load path: the file's tensors are checked against the model its
        // metadata describes before any parameter memory is allocated.
        let (file, notes) = try SafeTensorsFile.checkpoint(at: path)
        for note in notes { FileHandle.standardError.write(Data("lrunet: note: \(note)\n".utf8)) }
        let model = try Network(checkpoint: file, threading: Threading(threads: threads))
        return (model, path, file.metadata)
    }
}

/// `--json`: one JSON object on standard output instead of the text, so scripts need not parse prose.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    /// Prints a line of the text output (nothing in JSON mode).
    func text(_ line: @autoclosure () -> String) { if !json { print(line()) } }

    /// Prints the JSON record (nothing in text mode).
    func emit(_ record: [String: Any]) throws {
        guard json else { return }
        print(String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
    }
}

/// The checkpoint, its configuration and the machine, as every JSON record starts.
func modelRecord(_ net: Network, path: String, metadata: [String: String]) -> [String: Any] {
    ["checkpoint": path, "metadata": metadata, "summary": net.summary, "classes": net.classes,
     "in_channels": net.inputChannels, "kernel_path": InstructionSet.active.rawValue, "threads": net.threading.threads,
     "openblas_core": BLASCore.name]
}

/// The reuse cost report as JSON: parameters, conv weight bytes fetched per forward, MACs.
func costRecord(_ c: CostReport) -> [String: Any] {
    ["parameters": c.parameters, "parameters_unrolled": c.unrolledParameters, "conv_bytes_fetched": c.convBytesFetched,
     "conv_bytes_unrolled": c.convBytesUnrolled, "macs_per_image": c.totalMACs]
}

/// Runs a command body; any error becomes one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() }
    catch let e as ExitCode { throw e }
    catch {
        FileHandle.standardError.write(Data("lrunet: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// Which kernels run and on how many threads, as `info` and `bench` print it.
func describeMachine(threads: Int) -> String {
    let set = InstructionSet.active
    return "kernels: \(set) (\(set.lanes) lanes; this CPU: \(InstructionSet.cpuDescription)); threads: \(threads) (default \(CPUBudget.threads), from \(CPUBudget.source))\n"
        + BLASCoreChoice.note
}


/// The image side a checkpoint's data set uses (28 for Fashion-MNIST, 32 for CIFAR).
func inputSide(_ metadata: [String: String]) -> Int {
    DatasetKind(name: metadata["dataset"] ?? "") == .fashionMNIST ? 28 : 32
}

/// A one-line progress bar with rate and ETA on stderr, drawn only on a terminal.
struct ProgressBar {
    let total: Int
    let label: String
    let unit: String
    let start = Date()
    let enabled = isatty(2) != 0
    private var lastDraw = Date.distantPast

    init(total: Int, label: String, unit: String = "img") {
        self.total = total; self.label = label; self.unit = unit
    }

    mutating func update(_ done: Int, extra: String = "") {
        guard enabled else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 28
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "\r%@ [%@] %d/%d  %.0f %@/s  ETA %@ %@", label, bar, done, total, rate, unit,
                          formatDuration(eta), extra)
        FileHandle.standardError.write(Data(line.utf8))
        if done >= total { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t / 60 % 60) : String(format: "%d:%02d", t / 60, t % 60)
}
