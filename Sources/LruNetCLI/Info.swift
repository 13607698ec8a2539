import ArgumentParser
import Foundation
import LruNet

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's layer table and its reuse cost report.",
        discussion: "Per layer: PyTorch module name, operation, output shape, parameters and MACs per image.")

    @OptionGroup var model: ModelOptions
    @OptionGroup var format: OutputOptions

    @Option(help: "Input side in pixels (default: 28 for Fashion-MNIST checkpoints, 32 otherwise).")
    var size: Int?

    @Flag(help: "Also list what inference runs as one pass: each convolution with the BatchNorm, activation, residual add and shuffle its epilogue applies, and the rest of the inference rewrite.")
    var plan = false

    func run() throws {
        try reportingErrors {
            let (net, path, meta) = try model.load()
            let side = size ?? inputSide(meta)
            format.text("\((path as NSString).lastPathComponent): \(net.summary + ", \(net.inputChannels) input channel(s), \(net.classes) classes"), input \(net.inputChannels)x\(side)x\(side)")
            format.text(describeMachine(threads: net.threading.threads))
            let rows = try net.layerSummaries(height: side, width: side)
            let nameW = max(12, rows.map(\.name.count).max() ?? 0)
            let opW = max(10, rows.map(\.op.count).max() ?? 0)
            func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
            func lpad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
            format.text("\(pad("layer", nameW))  \(pad("op", opW))  \(pad("output", 10))  \(lpad("params", 9))  \(lpad("MACs", 11))")
            for r in rows {
                format.text("\(pad(r.name, nameW))  \(pad(r.op, opW))  \(pad(r.outputShape.perImage, 10))  \(lpad(String(r.parameters), 9))  \(lpad(String(r.totalMACs), 11))")
            }
            let fusions = net.rewriteDecisions
            if plan {
                format.text("inference runs these rows as one pass (\(fusions.count) rules applied; the rest run on their own):")
                for f in fusions { format.text("  \(f)") }
            }
            let cost = try net.costReport(height: side, width: side)
            format.text(cost.text)
            let memory = try net.activationMemory(batch: 256, height: side, width: side)
            format.text(String(format: "inference activations at batch 256: %.2f MB in one arena by liveness, passes of %d images (%.2f MB as separate buffers)",
                               Double(memory.arenaBytes) / 1e6, memory.imagesPerPass, Double(memory.separateBytes) / 1e6))
            var record = modelRecord(net, path: path, metadata: meta)
            record["input"] = [net.inputChannels, side, side]
            record["layers"] = rows.map { ["name": $0.name, "op": $0.op, "output": $0.outputShape.perImage, "parameters": $0.parameters, "macs": $0.totalMACs] }
            record["cost"] = costRecord(cost)
            record["activation_bytes_b256"] = memory.arenaBytes
            record["activation_bytes_b256_separate"] = memory.separateBytes
            record["images_per_pass_b256"] = memory.imagesPerPass
            record["fusions"] = fusions.map { ["rule": $0.rule, "layers": $0.layers] }
            try format.emit(record)
        }
    }
}
