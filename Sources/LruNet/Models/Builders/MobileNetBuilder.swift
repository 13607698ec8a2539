/// MobileNet (v1), the authors' CIFAR-style variant (BASELINES-SPEC.md): the stem does not
/// downsample.
///
///     features.0: conv 3x3/1 -> int(32w), BN, ReLU
///     features.1-13: depthwise 3x3 (stride), BN, ReLU; 1x1, BN, ReLU
///                    from (c, n, s) = (64,1,2), (128,2,2), (256,2,1), (512,6,2), (1024,2,1)
///     global avg pool; classifier: dropout 0.2, linear int(1024w) -> classes
enum MobileNetBuilder {
    static let stages = [(64, 1, 2), (128, 2, 2), (256, 2, 1), (512, 6, 2), (1024, 2, 1)]

    static func layers(_ c: ModelConfig, _ store: ParameterStore) -> [Layer] {
        var width = c.scaled(32), index = 1
        var layers: [Layer] = [SequenceLayer("features.0", [
            Conv2dLayer(name: "features.0.0", store: store, inputChannels: c.inChannels, outputChannels: width, kernelSize: 3, padding: 1),
            BatchNormLayer(name: "features.0.1", store: store, channels: width),
            ActivationLayer.relu("features.0.2"),
        ])]
        for (channels, count, stride) in stages {
            for i in 0..<count {
                let out = c.scaled(channels), name = "features.\(index)"
                layers.append(SequenceLayer(name, [
                    DepthwiseLayer(name: "\(name).conv1", store: store, channels: width, stride: i == 0 ? stride : 1),
                    BatchNormLayer(name: "\(name).bn1", store: store, channels: width),
                    ActivationLayer.relu("\(name).relu1"),
                    Conv2dLayer(name: "\(name).conv2", store: store, inputChannels: width, outputChannels: out, kernelSize: 1),
                    BatchNormLayer(name: "\(name).bn2", store: store, channels: out),
                    ActivationLayer.relu("\(name).relu2"),
                ]))
                width = out; index += 1
            }
        }
        return layers + [
            GlobalPoolLayer(name: "avgpool"),
            DropoutLayer(name: "classifier.0", probability: c.dropout),
            LinearLayer(name: "classifier.1", store: store, inputFeatures: width, outputFeatures: c.numClasses),
        ]
    }
}
