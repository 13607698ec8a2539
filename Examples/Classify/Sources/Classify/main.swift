// classify: Fashion-MNIST test images through the public LruNet API, tensors in and out.
//
//   classify CHECKPOINT [--data DIR] [--limit N] [--batch B]
//
// Prints correct/total, images/s of the forward passes (as `lrunet eval` counts them) and the
// kernel path in use.
import Foundation
import LruNet

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("classify: error: \(message)\n".utf8))
    exit(1)
}

/// `--name value` pairs and the one positional argument.
func parse(_ arguments: [String]) -> (checkpoint: String?, options: [String: String]) {
    var options: [String: String] = [:], positional: [String] = [], i = 0
    while i < arguments.count {
        if arguments[i].hasPrefix("--"), i + 1 < arguments.count { options[arguments[i]] = arguments[i + 1]; i += 2 }
        else { positional.append(arguments[i]); i += 1 }
    }
    return (positional.first, options)
}
let (argument, options) = parse(Array(CommandLine.arguments.dropFirst()))
let data = options["--data"] ?? "/usr/share/datasets/fashion-mnist"
let limit = options["--limit"].map { Int($0) ?? 0 } ?? 10_000
let batch = options["--batch"].map { Int($0) ?? 0 } ?? 256
guard let checkpoint = argument, limit > 0, batch > 0 else {
    fail("usage: classify CHECKPOINT [--data DIR] [--limit N] [--batch B]")
}

do {
    // Inference with the authors' weights.
    let model = try Network(contentsOf: checkpoint)
    let test = try DatasetKind.fashionMNIST.load(directory: data, split: .test)
    let count = min(limit, test.count), side = test.height, size = test.imageSize
    var correct = 0, seconds = 0.0, start = 0
    while start < count {
        let n = min(batch, count - start)
        let images = Tensor(shape: [n, 1, side, side], data: Array(test.images[start * size ..< (start + n) * size]))
        let t0 = Date()
        let logits = try model(images)                        // [n, 10]
        seconds += Date().timeIntervalSince(t0)
        for (i, label) in logits.argmaxRows().enumerated() where label == Int(test.labels[start + i]) { correct += 1 }
        start += n
    }
    print(String(format: "classify: %d/%d correct (%.2f%%), %.0f images/s at batch %d, kernels %@, %d thread(s)",
                 correct, count, 100 * Double(correct) / Double(count), Double(count) / seconds, batch,
                 InstructionSet.active.rawValue, model.threading.threads))
} catch {
    fail("\(error)")
}
