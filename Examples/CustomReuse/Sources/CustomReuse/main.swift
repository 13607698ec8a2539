// custom-reuse: layer reuse on a block that is none of the paper's networks.
//
//   CustomReuse [--data DIR] [--out DIR] [--epochs N]
//
// A stem, then one plain 3x3 conv + BatchNorm + residual + ReLU applied four times with one copy
// of the conv's weights (a BatchNorm of its own per application), then a classifier. Trains it,
// saves it, loads the file into a freshly built network and evaluates that.
import Foundation
import LruNet

/// The network, in the public graph: tensors get their PyTorch names from the path.
func reusedNet(width: Int = 32, applications n: Int = 4) -> Sequential {
    Sequential {
        Sequential {
            Conv2d(1, width, kernelSize: 3, stride: 2, padding: 1, bias: false)
            BatchNorm2d(width)
            ReLU()
        }.named("stem")
        Reuse(times: n) { i in
            Residual(activation: .relu) {
                Conv2d(width, width, kernelSize: 3, padding: 1, bias: false).named("conv")   // shared by all n
                BatchNorm2d(width).named("bn.\(i)")                                          // one per application
            }.named("")
        }.named("block")
        MaxPool2d(kernelSize: 2).named("pool")
        Sequential {
            Conv2d(width, 2 * width, kernelSize: 3, padding: 1, bias: false)
            BatchNorm2d(2 * width)
            ReLU()
        }.named("head")
        GlobalAvgPool2d()
        Dropout(0.2).named("drop")
        Linear(2 * width, 10).named("fc")
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("custom-reuse: error: \(message)\n".utf8))
    exit(1)
}

var options: [String: String] = [:]
var arguments = Array(CommandLine.arguments.dropFirst())
while arguments.count >= 2, arguments[0].hasPrefix("--") { options[arguments[0]] = arguments[1]; arguments.removeFirst(2) }
guard arguments.isEmpty else { fail("usage: CustomReuse [--data DIR] [--out DIR] [--epochs N]") }
let data = options["--data"] ?? DatasetKind.fashionMNIST.defaultDirectory!
let out = options["--out"] ?? NSTemporaryDirectory() + "custom-reuse-\(getpid())"
guard let epochs = Int(options["--epochs"] ?? "1"), epochs >= 1 else { fail("--epochs takes a whole number of at least 1") }

do {
    let train = try FashionMNIST.load(directory: data, split: .train)
    let test = try FashionMNIST.load(directory: data, split: .test)
    let model = try Network(reusedNet(), inputChannels: 1, classes: 10, name: "reused 3x3, N=4")
    model.initialise(seed: 1)
    var recipe = TrainingOptions()
    recipe.epochs = epochs
    recipe.learningRate = 0.05
    let trainer = try Trainer(model: model, train: train, test: test, options: recipe, directory: out, datasetName: "fashion-mnist")
    try trainer.run(resume: false, onEpoch: { epoch in
        print(String(format: "epoch %d: loss %.4f, test accuracy %.2f%%", epoch.epoch + 1, epoch.trainLoss, 100 * epoch.testAccuracy))
    })

    // A fresh network from the same description, with the saved weights loaded by name.
    let reloaded = try Network(reusedNet(), inputChannels: 1, classes: 10, name: "reused 3x3, N=4")
    try reloaded.load(SafeTensorsFile(path: out + "/model.safetensors"))
    let result = try reloaded.evaluate(test)
    let cost = try reloaded.costReport(height: 28, width: 28)
    print(String(format: "reloaded from %@/model.safetensors: test accuracy %.2f%% (%d/%d)",
                 out, 100 * result.accuracy, result.correct, result.total))
    print("parameters: \(cost.parameters) shared, \(cost.unrolledParameters) unrolled")
    print("conv weight bytes per forward: \(cost.convBytesFetched) fetched, \(cost.convBytesUnrolled) unrolled")
} catch {
    fail("\(error)")
}
