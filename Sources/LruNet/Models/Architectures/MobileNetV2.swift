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
public func mobileNetV2(classes: Int, width w: Double = 1, inputChannels: Int = 3, dropout: Float = 0.2) -> Sequential {
    func scaled(_ x: Int) -> Int { Int(Double(x) * w) }
    var blocks: [(input: Int, output: Int, stride: Int, expand: Int)] = []
    var width = scaled(32)
    for (t, channels, count, stride) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)] {
        for i in 0..<count { blocks.append((width, scaled(channels), i == 0 ? stride : 1, t)); width = scaled(channels) }
    }
    let last = w > 1 ? scaled(1280) : 1280
    return Sequential {
        Sequential {
            Sequential {
                Conv2d(inputChannels, scaled(32), kernelSize: 3, padding: 1, bias: false)
                BatchNorm2d(scaled(32))
                ReLU6()
            }
            for b in blocks {
                let body = invertedResidual(input: b.input, output: b.output, stride: b.stride, expand: b.expand).named("conv")
                if b.stride == 1 && b.input == b.output { Residual { body } } else { Sequential { body } }
            }
            Sequential {
                Conv2d(width, last, kernelSize: 1, bias: false)
                BatchNorm2d(last)
                ReLU6()
            }
        }.named("features")
        GlobalAvgPool2d().named("avgpool")
        Sequential {
            Dropout(dropout)
            Linear(last, classes)
        }.named("classifier")
    }
}

/// `conv` of an inverted residual: [1x1 expand, BN, ReLU6,] depthwise 3x3, BN, ReLU6, 1x1, BN.
private func invertedResidual(input: Int, output: Int, stride: Int, expand t: Int) -> Sequential {
    let hidden = input * t
    return Sequential {
        if t != 1 {
            Conv2d(input, hidden, kernelSize: 1, bias: false)
            BatchNorm2d(hidden)
            ReLU6()
        }
        Conv2d(hidden, hidden, kernelSize: 3, stride: stride, padding: 1, groups: hidden, bias: false)
        BatchNorm2d(hidden)
        ReLU6()
        Conv2d(hidden, output, kernelSize: 1, bias: false)
        BatchNorm2d(output)
    }
}
