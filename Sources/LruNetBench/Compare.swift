import Foundation
import LruNet

/// `make bench-compare`: our speed on a checkpoint as ratios to ONNX Runtime's and PyTorch's on
/// the same checkpoint, measured a minute apart in one `make` run by
/// `Benchmarks/compare/frameworks.py` (which first checks that all three give the same logits).
enum Compare {
    static func run(results path: String, weights: String, threads: Int) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "lrunet-bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(path): no framework results"])
        }
        let frameworks = [("onnxruntime", "ONNX Runtime"), ("pytorch", "PyTorch")].compactMap { key, label in
            (json[key] as? [String: Any]).map { (label + " " + ($0["version"] as? String ?? ""), $0) }
        }
        let model = try Network(contentsOf: weights, threading: Threading(threads: threads))
        let c = model.inputChannels, side = c == 1 ? 28 : 32
        var rng = SplitMix64(seed: 11)
        func images(_ n: Int) -> [Float] { (0..<(n * c * side * side)).map { _ in rng.nextUniform() } }

        var ours: [(String, Double)] = []
        for batch in [1, 64, 256] {
            let x = images(batch)
            var y = [Float](repeating: 0, count: batch * model.classes)
            let repeats = batch == 1 ? 32 : 1
            let t = try measure(runs: 5) {
                for _ in 0..<repeats {
                    try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                        try model.infer(xb.baseAddress!, batch: batch, channels: c, height: side, width: side, into: yb.baseAddress!)
                    } }
                }
            }
            ours.append(("infer_b\(batch)_img_s", Double(batch * repeats) / t.median))
        }
        let x = images(128), labels = (0..<128).map { Int32($0 % model.classes) }
        let t = try measure(runs: 3) {
            _ = try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                try model.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: 128, channels: c, height: side,
                                    width: side, optimizer: SGD(), learningRate: 0.01, seed: 1)
            } }
        }
        ours.append(("train_b128_img_s", 128 / t.median))

        let name = URL(fileURLWithPath: weights).deletingPathExtension().lastPathComponent
        // Issue 23's targets: every baseline at least as fast as ONNX Runtime in inference and as
        // PyTorch in training; LruNet at least 5x ONNX Runtime.
        let inferenceTarget = model.config?.arch == .lrunet ? 5.0 : 1.0
        func target(_ key: String, _ framework: String) -> Double? {
            key.hasPrefix("train") ? (framework.hasPrefix("PyTorch") ? 1.0 : nil) : (framework.hasPrefix("ONNX") ? inferenceTarget : nil)
        }
        print("\n\(name), \(threads) threads, \(InstructionSet.cpuDescription); ratio = LruNet-Swift speed / theirs, "
              + "then / the target (\(inferenceTarget == 1 ? "1.0x ONNX Runtime" : "5x ONNX Runtime") in inference, 1.0x PyTorch in training)")
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        print(pad("workload", 20) + pad("LruNet-Swift", 15) + frameworks.map { pad($0.0, 36) }.joined())
        for (key, rate) in ours {
            let label = key.hasPrefix("train") ? "training b128" : "inference b" + key.dropFirst(7).prefix { $0.isNumber }
            func show(_ r: Double) -> String { key == "infer_b1_img_s" ? String(format: "%.2f ms", 1000 / r) : String(format: "%.0f img/s", r) }
            var line = pad(label, 20) + pad(show(rate), 15)
            for (framework, results) in frameworks {
                if let theirs = results[key] as? Double {
                    let ratio = rate / theirs
                    let goal = target(key, framework).map { String(format: ", %.2fx target", ratio / $0) } ?? ""
                    line += pad("\(show(theirs)) (\(String(format: "%.2fx", ratio))\(goal))", 36)
                } else { line += pad("-", 36) }
            }
            print(line)
        }
    }
}
