import Foundation
import LruNet

/// `make bench-compare`: our inference speed on a checkpoint as ratios to ONNX Runtime's on the
/// same checkpoint, measured minutes apart in one `make` run by `Benchmarks/compare/ort_lrunet.py`
/// (which also checks that both give the same logits).
enum Compare {
    static func run(ortResults path: String, weights: String, threads: Int) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let ort = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw NSError(domain: "lrunet-bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(path): no ONNX Runtime results"])
        }
        let model = try LruNet(contentsOf: weights, threading: Threading(threads: threads))
        let side = model.config.inChannels == 1 ? 28 : 32
        var rng = SplitMix64(seed: 11)
        let name = URL(fileURLWithPath: weights).deletingPathExtension().lastPathComponent
        print("\n\(name), \(threads) threads: LruNet-Swift vs ONNX Runtime \(ort["onnxruntime"] ?? "?") (its faster graph, shared or unrolled weights)")
        print("batch   LruNet-Swift      ONNX Runtime      ratio")
        for batch in [1, 64, 256] {
            let x = (0..<(batch * model.config.inChannels * side * side)).map { _ in rng.nextUniform() }
            var y = [Float](repeating: 0, count: batch * model.config.numClasses)
            let repeats = batch == 1 ? 32 : 1
            let t = try measure(runs: 5) {
                for _ in 0..<repeats {
                    try x.withUnsafeBufferPointer { xb in try y.withUnsafeMutableBufferPointer { yb in
                        try model.infer(xb.baseAddress!, batch: batch, channels: model.config.inChannels, height: side, width: side,
                                        into: yb.baseAddress!)
                    } }
                }
            }
            let ours = Double(batch * repeats) / t.median
            guard let theirs = ort["infer_b\(batch)_img_s"] as? Double else { continue }
            func show(_ r: Double) -> String { batch == 1 ? String(format: "%.2f ms", 1000 / r) : String(format: "%.0f img/s", r) }
            print("\(String(batch).padding(toLength: 8, withPad: " ", startingAt: 0))\(show(ours).padding(toLength: 18, withPad: " ", startingAt: 0))\(show(theirs).padding(toLength: 18, withPad: " ", startingAt: 0))\(String(format: "%.2fx", ours / theirs))")
        }
    }
}
