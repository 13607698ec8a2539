/// MobileNetV2, the authors' CIFAR-style variant (BASELINES-SPEC.md).
///
///     features.0: conv 3x3/1 -> int(32w), BN, ReLU6
///     features.1-17: inverted residuals from (t, c, n, s) = (1,16,1,1), (6,24,2,2), (6,32,3,2),
///         (6,64,4,1), (6,96,3,1), (6,160,3,2), (6,320,1,1); hidden width in*t;
///         t = 1: depthwise 3x3, BN, ReLU6; 1x1, BN
///         t = 6: 1x1, BN, ReLU6; depthwise 3x3, BN, ReLU6; 1x1, BN
///         a residual add when stride 1 and in == out
///     features.18: 1x1 -> 1280 (not scaled for w <= 1), BN, ReLU6
///     global avg pool; classifier: dropout 0.2, linear 1280 -> classes
enum MobileNetV2Builder {
    static let stages = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    static func layers(_ c: ModelConfig, _ store: ParameterStore) -> [Layer] {
        var width = c.scaled(32), index = 1
        var layers: [Layer] = [SequenceLayer("features.0", [
            Conv2dLayer(name: "features.0.0", store: store, inputChannels: c.inChannels, outputChannels: width, kernelSize: 3, padding: 1),
            BatchNormLayer(name: "features.0.1", store: store, channels: width),
            ActivationLayer.relu6("features.0.2"),
        ])]
        for (t, channels, count, stride) in stages {
            for i in 0..<count {
                let out = c.scaled(channels), s = i == 0 ? stride : 1
                layers.append(invertedResidual("features.\(index)", store, input: width, output: out, stride: s, expand: t))
                width = out; index += 1
            }
        }
        let last = c.widthMult > 1 ? c.scaled(1280) : 1280
        return layers + [
            SequenceLayer("features.18", [
                Conv2dLayer(name: "features.18.0", store: store, inputChannels: width, outputChannels: last, kernelSize: 1),
                BatchNormLayer(name: "features.18.1", store: store, channels: last),
                ActivationLayer.relu6("features.18.2"),
            ]),
            GlobalPoolLayer(name: "avgpool"),
            DropoutLayer(name: "classifier.0", probability: c.dropout),
            LinearLayer(name: "classifier.1", store: store, inputFeatures: last, outputFeatures: c.numClasses),
        ]
    }

    static func invertedResidual(_ name: String, _ store: ParameterStore, input: Int, output: Int, stride: Int, expand t: Int) -> Layer {
        let hidden = input * t, p = "\(name).conv"
        var ops: [Layer] = []
        if t != 1 {
            ops += [Conv2dLayer(name: "\(p).0", store: store, inputChannels: input, outputChannels: hidden, kernelSize: 1),
                    BatchNormLayer(name: "\(p).1", store: store, channels: hidden), ActivationLayer.relu6("\(p).2")]
        }
        let k = t == 1 ? 0 : 3     // module indices shift by 3 when there is an expansion
        ops += [DepthwiseLayer(name: "\(p).\(k)", store: store, channels: hidden, stride: stride),
                BatchNormLayer(name: "\(p).\(k + 1)", store: store, channels: hidden), ActivationLayer.relu6("\(p).\(k + 2)"),
                Conv2dLayer(name: "\(p).\(k + 3)", store: store, inputChannels: hidden, outputChannels: output, kernelSize: 1),
                BatchNormLayer(name: "\(p).\(k + 4)", store: store, channels: output)]
        let body = SequenceLayer(name, ops)
        return stride == 1 && input == output ? ResidualLayer("\(name).add", body: body) : body
    }
}
