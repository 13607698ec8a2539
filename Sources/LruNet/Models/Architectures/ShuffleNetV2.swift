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
///
/// `width` is one of 0.25, 0.5, 0.75, 1, 1.5 and 2 (``shuffleNetV2Widths(_:)``).
public func shuffleNetV2(classes: Int, width: Double = 1, inputChannels: Int = 3) -> Sequential {
    let w = shuffleNetV2Widths(width) ?? shuffleNetV2Widths(1)!
    return Sequential {
        Conv2d(inputChannels, 24, kernelSize: 3, padding: 1, bias: false).named("conv1")
        BatchNorm2d(24).named("bn1")
        ReLU().named("relu1")
        for (stage, blocks) in [3, 7, 3].enumerated() {
            Sequential {
                downBlock(input: stage == 0 ? 24 : w[stage - 1], output: w[stage])
                for _ in 1...blocks { basicBlock(channels: w[stage]) }
            }.named("layer\(stage + 1)")
        }
        Conv2d(w[2], w[3], kernelSize: 1, bias: false).named("conv2")
        BatchNorm2d(w[3]).named("bn2")
        ReLU().named("relu2")
        GlobalAvgPool2d().named("avgpool")
        Linear(w[3], classes).named("linear")
    }
}

/// The stage widths ShuffleNetV2 is defined for, by width multiplier; nil for any other.
public func shuffleNetV2Widths(_ width: Double) -> [Int]? {
    [0.25: [32, 64, 128, 1024], 0.5: [48, 96, 192, 1024], 0.75: [60, 120, 240, 1024], 1: [116, 232, 464, 1024],
     1.5: [176, 352, 704, 1024], 2: [224, 488, 976, 2048]][width]
}

private func downBlock(input: Int, output: Int) -> Sequential {
    let mid = output / 2
    let left = Sequential {
        Conv2d(input, input, kernelSize: 3, stride: 2, padding: 1, groups: input, bias: false).named("conv1")
        BatchNorm2d(input).named("bn1")
        Conv2d(input, mid, kernelSize: 1, bias: false).named("conv2")
        BatchNorm2d(mid).named("bn2")
        ReLU().named("relu2")
    }
    let right = Sequential {
        Conv2d(input, mid, kernelSize: 1, bias: false).named("conv3")
        BatchNorm2d(mid).named("bn3")
        ReLU().named("relu3")
        Conv2d(mid, mid, kernelSize: 3, stride: 2, padding: 1, groups: mid, bias: false).named("conv4")
        BatchNorm2d(mid).named("bn4")
        Conv2d(mid, mid, kernelSize: 1, bias: false).named("conv5")
        BatchNorm2d(mid).named("bn5")
        ReLU().named("relu5")
    }
    return Sequential {
        Concat(.fork, left.named(""), right.named("")).named("")
        ChannelShuffle(groups: 2).named("shuffle")
    }
}

private func basicBlock(channels: Int) -> Sequential {
    let half = channels / 2
    let branch = Sequential {
        Conv2d(half, half, kernelSize: 1, bias: false).named("conv1")
        BatchNorm2d(half).named("bn1")
        ReLU().named("relu1")
        Conv2d(half, half, kernelSize: 3, padding: 1, groups: half, bias: false).named("conv2")
        BatchNorm2d(half).named("bn2")
        Conv2d(half, half, kernelSize: 1, bias: false).named("conv3")
        BatchNorm2d(half).named("bn3")
        ReLU().named("relu3")
    }
    return Sequential {
        Concat(.split, Identity(), branch.named("")).named("")
        ChannelShuffle(groups: 2).named("shuffle")
    }
}
