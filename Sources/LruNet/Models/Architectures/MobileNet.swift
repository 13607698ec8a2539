/// MobileNet (v1), the authors' CIFAR-style variant (BASELINES-SPEC.md): the stem does not
/// downsample.
///
///     features.0: conv 3x3/1 -> int(32w), BN, ReLU
///     features.1-13: depthwise 3x3 (stride), BN, ReLU; 1x1, BN, ReLU
///                    from (c, n, s) = (64,1,2), (128,2,2), (256,2,1), (512,6,2), (1024,2,1)
///     global avg pool; classifier: dropout 0.2, linear int(1024w) -> classes
public func mobileNet(classes: Int, width w: Double = 1, inputChannels: Int = 3, dropout: Float = 0.2) -> Sequential {
    func scaled(_ x: Int) -> Int { Int(Double(x) * w) }
    var blocks: [(input: Int, output: Int, stride: Int)] = []
    var width = scaled(32)
    for (channels, count, stride) in [(64, 1, 2), (128, 2, 2), (256, 2, 1), (512, 6, 2), (1024, 2, 1)] {
        for i in 0..<count { blocks.append((width, scaled(channels), i == 0 ? stride : 1)); width = scaled(channels) }
    }
    return Sequential {
        Sequential {
            Sequential {
                Conv2d(inputChannels, scaled(32), kernelSize: 3, padding: 1, bias: false)
                BatchNorm2d(scaled(32))
                ReLU()
            }
            for b in blocks {
                Sequential {
                    Conv2d(b.input, b.input, kernelSize: 3, stride: b.stride, padding: 1, groups: b.input, bias: false).named("conv1")
                    BatchNorm2d(b.input).named("bn1")
                    ReLU().named("relu1")
                    Conv2d(b.input, b.output, kernelSize: 1, bias: false).named("conv2")
                    BatchNorm2d(b.output).named("bn2")
                    ReLU().named("relu2")
                }
            }
        }.named("features")
        GlobalAvgPool2d().named("avgpool")
        Sequential {
            Dropout(dropout)
            Linear(width, classes)
        }.named("classifier")
    }
}
