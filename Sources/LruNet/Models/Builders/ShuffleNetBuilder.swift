/// ShuffleNet (v1), the authors' CIFAR-style variant (BASELINES-SPEC.md).
///
///     conv1: 3x3/1 -> int(24w), bn1, ReLU
///     layer1..3: 4, 8, 4 bottlenecks to int(width * w); the first of a stage has stride 2
///     bottleneck(in, out): mid = (out // 4g) * g;
///         1x1 g-grouped conv1, bn1, ReLU; channel shuffle (g groups);
///         depthwise 3x3 conv2 (stride), bn2, ReLU (the authors keep it); 1x1 g-grouped conv3, bn3
///         stride 2: ReLU(concat[branch, avg pool 3x3/2/1 counting padding]), branch out = width - in
///         stride 1: ReLU(branch + x)
///     global avg pool; linear
enum ShuffleNetBuilder {
    /// Stage widths for g groups (before the width multiplier).
    static func widths(_ groups: Int) -> [Int] { groups == 8 ? [24, 384, 768, 1536] : [24, 240, 480, 960] }
    static func bottleneckWidth(out: Int, groups: Int) -> Int { (out / (4 * groups)) * groups }

    /// Why `c` cannot be built, if it cannot: every grouped 1x1 needs channel counts divisible
    /// by g, and every bottleneck at least g channels.
    static func problem(_ c: ModelConfig) -> String? {
        let w = widths(c.groups).map { c.scaled($0) }, g = c.groups
        var input = w[0]
        guard input >= 1 else { return "no stem channels" }
        for width in w.dropFirst() {
            for (i, o) in [(input, width - input), (width, width)] {
                guard o >= 1, i % g == 0, o % g == 0, bottleneckWidth(out: o, groups: g) >= g else {
                    return "a bottleneck \(i) -> \(o) channels that \(g) groups cannot split"
                }
            }
            input = width
        }
        return nil
    }

    static func layers(_ c: ModelConfig, _ store: ParameterStore) -> [Layer] {
        let w = widths(c.groups).map { c.scaled($0) }, g = c.groups
        var input = w[0]
        var layers: [Layer] = [
            Conv2dLayer(name: "conv1", store: store, inputChannels: c.inChannels, outputChannels: input, kernelSize: 3, padding: 1),
            BatchNormLayer(name: "bn1", store: store, channels: input),
            ActivationLayer.relu("relu1"),
        ]
        for (stage, blocks) in [4, 8, 4].enumerated() {
            let width = w[stage + 1]
            for i in 0..<blocks {
                let name = "layer\(stage + 1).\(i)"
                if i == 0 {
                    let branch = bottleneck(name, store, input: input, output: width - input, stride: 2, groups: g)
                    let shortcut = PoolLayer(name: "\(name).shortcut", mode: .average, kernelSize: 3, stride: 2, padding: 1)
                    layers += [ConcatLayer("\(name).cat", input: .fork, left: branch, right: shortcut), ActivationLayer.relu("\(name).relu")]
                } else {
                    layers.append(ResidualLayer("\(name).add", body: bottleneck(name, store, input: width, output: width, stride: 1, groups: g),
                                           activation: .relu))
                }
                input = width
            }
        }
        return layers + [GlobalPoolLayer(name: "avgpool"),
                         LinearLayer(name: "linear", store: store, inputFeatures: input, outputFeatures: c.numClasses)]
    }

    static func bottleneck(_ name: String, _ store: ParameterStore, input: Int, output: Int, stride: Int, groups g: Int) -> SequenceLayer {
        let mid = bottleneckWidth(out: output, groups: g)
        return SequenceLayer(name, [
            Conv2dLayer(name: "\(name).conv1", store: store, inputChannels: input, outputChannels: mid, kernelSize: 1, groups: g),
            BatchNormLayer(name: "\(name).bn1", store: store, channels: mid),
            ActivationLayer.relu("\(name).relu1"),
            ShuffleLayer(name: "\(name).shuffle", kind: .groups(g)),
            DepthwiseLayer(name: "\(name).conv2", store: store, channels: mid, stride: stride),
            BatchNormLayer(name: "\(name).bn2", store: store, channels: mid),
            ActivationLayer.relu("\(name).relu2"),
            Conv2dLayer(name: "\(name).conv3", store: store, inputChannels: mid, outputChannels: output, kernelSize: 1, groups: g),
            BatchNormLayer(name: "\(name).bn3", store: store, channels: output),
        ])
    }
}
