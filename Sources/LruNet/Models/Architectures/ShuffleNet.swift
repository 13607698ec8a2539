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
public func shuffleNet(classes: Int, groups g: Int = 3, width w: Double = 1, inputChannels: Int = 3) -> Sequential {
    let widths = ShuffleNetShape.widths(g).map { Int(Double($0) * w) }
    return Sequential {
        Conv2d(inputChannels, widths[0], kernelSize: 3, padding: 1, bias: false).named("conv1")
        BatchNorm2d(widths[0]).named("bn1")
        ReLU().named("relu1")
        for (stage, blocks) in [4, 8, 4].enumerated() {
            Sequential {
                for i in 0..<blocks {
                    let input = i == 0 ? widths[stage] : widths[stage + 1], output = widths[stage + 1]
                    if i == 0 {
                        Sequential {
                            Concat(.fork, shuffleBottleneck(input: input, output: output - input, stride: 2, groups: g).named(""),
                                   AvgPool2d(kernelSize: 3, stride: 2, padding: 1).named("shortcut")).named("")
                            ReLU().named("relu")
                        }
                    } else {
                        Residual(activation: .relu) { shuffleBottleneck(input: output, output: output, stride: 1, groups: g).named("") }
                    }
                }
            }.named("layer\(stage + 1)")
        }
        GlobalAvgPool2d().named("avgpool")
        Linear(widths[3], classes).named("linear")
    }
}

private func shuffleBottleneck(input: Int, output: Int, stride: Int, groups g: Int) -> Sequential {
    let mid = ShuffleNetShape.bottleneckWidth(out: output, groups: g)
    return Sequential {
        Conv2d(input, mid, kernelSize: 1, groups: g, bias: false).named("conv1")
        BatchNorm2d(mid).named("bn1")
        ReLU().named("relu1")
        ChannelShuffle(groups: g).named("shuffle")
        Conv2d(mid, mid, kernelSize: 3, stride: stride, padding: 1, groups: mid, bias: false).named("conv2")
        BatchNorm2d(mid).named("bn2")
        ReLU().named("relu2")
        Conv2d(mid, output, kernelSize: 1, groups: g, bias: false).named("conv3")
        BatchNorm2d(output).named("bn3")
    }
}

/// ShuffleNet's channel arithmetic, which decides the widths it can be built at.
enum ShuffleNetShape {
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
}
