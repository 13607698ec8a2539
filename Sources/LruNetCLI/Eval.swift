import ArgumentParser
import Foundation
import LruNet

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on its data set's test split.",
        discussion: """
        Builds the model from the checkpoint's metadata, classifies the test split and prints \
        correct/total, accuracy, images/s and the reuse cost report (parameters, conv weight bytes \
        fetched per forward with the parameter cache vs. an unrolled network, MACs per image).

        The data set comes from the metadata ('dataset'): Fashion-MNIST defaults to \
        /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist); CIFAR needs --data \
        pointing at the official binary files.
        """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var format: OutputOptions

    @Option(help: ArgumentHelp("Data set directory (default: the Fashion-MNIST Debian path).", valueName: "dir"))
    var data: String?

    @Option(help: "Data set name, overriding the checkpoint metadata (fashion-mnist, cifar10, cifar100).")
    var dataset: String?

    @Option(help: "Images per forward pass.")
    var batch: Int = 256

    @Option(help: "Evaluate only the first N test images.")
    var limit: Int?

    @Option(help: ArgumentHelp("Write the [N, classes] outputs to this .npy file.", valueName: "file"))
    var logitsOut: String?

    func validate() throws {
        guard batch >= 1 && batch <= 65536 else { throw ValidationError("--batch must be between 1 and 65536") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let (net, path, meta) = try model.load()
            let name = dataset ?? meta["dataset"] ?? "fashion-mnist"
            guard let kind = DatasetKind(name: name) else {
                throw ValidationError("unknown data set '\(name)' (use fashion-mnist, cifar10 or cifar100)")
            }
            guard let dir = data ?? kind.defaultDirectory else {
                throw ValidationError("\(kind.rawValue) has no default location; pass --data DIR with the official binary files")
            }
            let test = try kind.load(directory: dir, split: .test)
            format.text("\((path as NSString).lastPathComponent): \(net.summary + ", \(net.inputChannels) input channel(s), \(net.classes) classes")")
            var bar = ProgressBar(total: min(limit ?? test.count, test.count), label: "eval")
            let r = try net.evaluate(test, batchSize: batch, limit: limit, keepLogits: logitsOut != nil) { done, _ in
                bar.update(done)
            }
            let reported = meta["reported_test_accuracy"].map { " (reported \($0)%)" } ?? ""
            format.text("\(kind.rawValue) test: \(r.correct)/\(r.total) correct, accuracy \(String(format: "%.2f", 100 * r.accuracy))%\(reported)")
            format.text(String(format: "speed: %.0f images/s at batch %d, %d thread(s)", r.imagesPerSecond, batch, net.threading.threads))
            let cost = try net.costReport(height: test.height, width: test.width)
            format.text(cost.text)
            if let out = logitsOut, let logits = r.logits {
                try Npy.write(Tensor(shape: [r.total, net.classes], data: logits), to: out)
                format.text("wrote \(out) [\(r.total), \(net.classes)]")
            }
            var record = modelRecord(net, path: path, metadata: meta)
            record["dataset"] = kind.rawValue
            record["correct"] = r.correct; record["total"] = r.total; record["accuracy"] = r.accuracy
            record["images_per_second"] = r.imagesPerSecond; record["batch"] = batch
            record["cost"] = costRecord(cost)
            if let out = logitsOut { record["logits_out"] = out }
            try format.emit(record)
        }
    }
}
