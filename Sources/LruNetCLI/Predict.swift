import ArgumentParser
import Foundation
import LruNet

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a checkpoint on a .npy batch of images.",
        discussion: """
        The input is float32 [B, C, H, W] in C order with pixels in [0, 1] (no normalisation, as the \
        authors' ToTensor); the output is float32 [B, num_classes]. From NumPy: \
        np.save('x.npy', x.astype(np.float32)); y = np.load('y.npy'). An input holding NaN or \
        infinity is refused (it would give NaN outputs).
        """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var format: OutputOptions

    @Option(help: ArgumentHelp("Input images, float32 [B, C, H, W] .npy.", valueName: "file"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the [B, classes] outputs (.npy).", valueName: "file"))
    var output: String

    @Option(help: "Images per forward pass.")
    var batch: Int = 256

    func validate() throws {
        guard batch >= 1 && batch <= 65536 else { throw ValidationError("--batch must be between 1 and 65536") }
    }

    func run() throws {
        try reportingErrors {
            let (net, path, meta) = try model.load()
            let x = try Npy.read(input)
            guard x.shape.count == 4 else { throw ModelError.inputRank(got: x.shape) }
            guard x.shape[0] >= 1 else { throw ModelError.emptyBatch }
            guard x.shape[1] == net.inputChannels else { throw ModelError.inputChannels(expected: net.inputChannels, got: x.shape[1]) }
            // NaN or infinity would spread through every layer into silent NaN outputs.
            if let i = x.data.firstIndex(where: { !$0.isFinite }) { throw ModelError.nonFinite(what: input, index: i, value: x.data[i]) }
            let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let k = net.classes
            var y = Tensor(zeros: [b, k])
            try x.data.withUnsafeBufferPointer { src in
                try y.data.withUnsafeMutableBufferPointer { dst in
                    var start = 0
                    while start < b {
                        let n = min(batch, b - start)
                        try net.infer(src.baseAddress! + start * c * h * w, batch: n, channels: c, height: h, width: w,
                                      into: dst.baseAddress! + start * k)
                        start += n
                    }
                }
            }
            try Npy.write(y, to: output)
            format.text("wrote \(output) [\(b), \(k)]")
            var record = modelRecord(net, path: path, metadata: meta)
            record["input"] = input; record["output"] = output; record["shape"] = [b, k]
            record["predictions"] = y.argmaxRows()
            try format.emit(record)
        }
    }
}
