/// ShuffleNetV2, the authors' CIFAR-style variant (BASELINES-SPEC.md).
///
///     conv1: 3x3/1 -> 24, bn1, ReLU
///     layer1..3: a down block, then 3, 7, 3 basic blocks, to widths[0..2]
///     down(in, out), mid = out/2: left = depthwise 3x3/2 conv1, bn1; 1x1 conv2, bn2, ReLU
///                                 right = 1x1 conv3, bn3, ReLU; depthwise 3x3/2 conv4, bn4; 1x1 conv5, bn5, ReLU
///                                 concat [left, right], shuffle (2 groups)
///     basic(C): split the channels; on the second half 1x1 conv1, bn1, ReLU; depthwise 3x3 conv2,
///               bn2; 1x1 conv3, bn3, ReLU; concat [first half, branch], shuffle (2 groups)
///     conv2: 1x1 widths[2] -> widths[3], bn2, ReLU; global avg pool; linear
enum ShuffleNetV2Builder {
    static func widths(_ w: Double) -> [Int]? {
        [0.25: [32, 64, 128, 1024], 0.5: [48, 96, 192, 1024], 0.75: [60, 120, 240, 1024], 1: [116, 232, 464, 1024],
         1.5: [176, 352, 704, 1024], 2: [224, 488, 976, 2048]][w]
    }

    static func layers(_ c: ModelConfig, _ store: ParameterStore) -> [Layer] {
        let w = widths(c.widthMult)!
        var input = 24
        var layers: [Layer] = [
            Conv2dLayer(name: "conv1", store: store, inputChannels: c.inChannels, outputChannels: input, kernelSize: 3, padding: 1),
            BatchNormLayer(name: "bn1", store: store, channels: input),
            ActivationLayer.relu("relu1"),
        ]
        for (stage, blocks) in [3, 7, 3].enumerated() {
            let width = w[stage]
            layers.append(down("layer\(stage + 1).0", store, input: input, output: width))
            for i in 1...blocks { layers.append(basic("layer\(stage + 1).\(i)", store, channels: width)) }
            input = width
        }
        return layers + [
            Conv2dLayer(name: "conv2", store: store, inputChannels: input, outputChannels: w[3], kernelSize: 1),
            BatchNormLayer(name: "bn2", store: store, channels: w[3]),
            ActivationLayer.relu("relu2"),
            GlobalPoolLayer(name: "avgpool"),
            LinearLayer(name: "linear", store: store, inputFeatures: w[3], outputFeatures: c.numClasses),
        ]
    }

    static func down(_ name: String, _ store: ParameterStore, input: Int, output: Int) -> Layer {
        let mid = output / 2
        let left = SequenceLayer("\(name).left", [
            DepthwiseLayer(name: "\(name).conv1", store: store, channels: input, stride: 2),
            BatchNormLayer(name: "\(name).bn1", store: store, channels: input),
            Conv2dLayer(name: "\(name).conv2", store: store, inputChannels: input, outputChannels: mid, kernelSize: 1),
            BatchNormLayer(name: "\(name).bn2", store: store, channels: mid),
            ActivationLayer.relu("\(name).relu2"),
        ])
        let right = SequenceLayer("\(name).right", [
            Conv2dLayer(name: "\(name).conv3", store: store, inputChannels: input, outputChannels: mid, kernelSize: 1),
            BatchNormLayer(name: "\(name).bn3", store: store, channels: mid),
            ActivationLayer.relu("\(name).relu3"),
            DepthwiseLayer(name: "\(name).conv4", store: store, channels: mid, stride: 2),
            BatchNormLayer(name: "\(name).bn4", store: store, channels: mid),
            Conv2dLayer(name: "\(name).conv5", store: store, inputChannels: mid, outputChannels: mid, kernelSize: 1),
            BatchNormLayer(name: "\(name).bn5", store: store, channels: mid),
            ActivationLayer.relu("\(name).relu5"),
        ])
        return SequenceLayer(name, [ConcatLayer("\(name).cat", input: .fork, left: left, right: right),
                                 ShuffleLayer(name: "\(name).shuffle", kind: .groups(2))])
    }

    static func basic(_ name: String, _ store: ParameterStore, channels: Int) -> Layer {
        let half = channels / 2
        let branch = SequenceLayer("\(name).branch", [
            Conv2dLayer(name: "\(name).conv1", store: store, inputChannels: half, outputChannels: half, kernelSize: 1),
            BatchNormLayer(name: "\(name).bn1", store: store, channels: half),
            ActivationLayer.relu("\(name).relu1"),
            DepthwiseLayer(name: "\(name).conv2", store: store, channels: half, stride: 1),
            BatchNormLayer(name: "\(name).bn2", store: store, channels: half),
            Conv2dLayer(name: "\(name).conv3", store: store, inputChannels: half, outputChannels: half, kernelSize: 1),
            BatchNormLayer(name: "\(name).bn3", store: store, channels: half),
            ActivationLayer.relu("\(name).relu3"),
        ])
        return SequenceLayer(name, [ConcatLayer("\(name).split", input: .split, left: nil, right: branch),
                                 ShuffleLayer(name: "\(name).shuffle", kind: .groups(2))])
    }
}
