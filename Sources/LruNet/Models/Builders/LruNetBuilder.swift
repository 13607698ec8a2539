/// LruNet (Kopuklu et al., ICIP 2019), as the authors' `models/lrunet.py` builds it.
///
///     features: conv 3x3/2 -> 64, BN, ReLU   (width 2: concat [x, x])
///     stage1..4: reused blocks of cfg = [64, 128, 256, 512] * width, N applications each,
///                with max pool 3x3/2 and concat [x, x] between (see LRUNET-SPEC.md)
///     classifier: 1x1 g8 conv cfg[3] -> cfg[4], BN, ReLU, dropout, 1x1 conv -> classes (+bias),
///                 ReLU, avg pool 2x2/1
enum LruNetBuilder {
    static func layers(_ c: ModelConfig, _ store: ParameterStore) -> [Layer] {
        let width = Int(c.widthMult), n = c.layerReuse
        let cfg = [64, 128, 256, 512, 256].map { $0 * width }
        func block(_ i: Int) -> Layer { ReuseBlock(name: "stage\(i + 1)", store: store, planes: cfg[i], iterations: n) }
        func pool(_ i: Int) -> Layer { PoolLayer(name: "mpool\(i)", mode: .max, kernelSize: 3, stride: 2, padding: 1) }
        func concat(_ i: Int) -> Layer { ConcatSelfLayer(name: "cat\(i)") }
        var layers: [Layer] = [
            Conv2dLayer(name: "features.0", store: store, inputChannels: c.inChannels, outputChannels: 64, kernelSize: 3, stride: 2, padding: 1),
            BatchNormLayer(name: "features.1", store: store, channels: 64),
            ActivationLayer.relu("features.2"),
        ]
        if width == 2 { layers.append(concat(0)) }
        layers += [
            block(0), pool(1), concat(1),
            block(1), pool(2), concat(2),
            block(2), concat(3),
            block(3), pool(4),
            Conv2dLayer(name: "classifier.0", store: store, inputChannels: cfg[3], outputChannels: cfg[4], kernelSize: 1, groups: 8),
            BatchNormLayer(name: "classifier.1", store: store, channels: cfg[4]),
            ActivationLayer.relu("classifier.2"),
            DropoutLayer(name: "classifier.3", probability: c.dropout),
            Conv2dLayer(name: "classifier.4", store: store, inputChannels: cfg[4], outputChannels: c.numClasses, kernelSize: 1, bias: true),
            ActivationLayer.relu("classifier.5"),
            PoolLayer(name: "classifier.6", mode: .average, kernelSize: 2, stride: 1),
        ]
        return layers
    }
}
