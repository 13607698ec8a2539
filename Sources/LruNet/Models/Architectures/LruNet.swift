/// LruNet (Kopuklu et al., ICIP 2019), as the authors' `models/lrunet.py` builds it, in the
/// public graph (LRUNET-SPEC.md):
///
///     features: conv 3x3/2 -> 64, BN, ReLU   (width 2: concat [x, x])
///     stage1..4: reused blocks of cfg = [64, 128, 256, 512] * width, N applications each,
///                with max pool 3x3/2 and concat [x, x] between
///     classifier: 1x1 g8 conv cfg[3] -> cfg[4], BN, ReLU, dropout, 1x1 conv -> classes (+bias),
///                 ReLU, avg pool 2x2/1
public func lruNet(classes: Int, width: Int = 1, reuse n: Int, inputChannels: Int = 3, dropout: Float = 0.5) -> Sequential {
    let cfg = [64, 128, 256, 512, 256].map { $0 * width }
    func repeatChannels() -> Concat { Concat(.fork, Identity(), Identity()) }
    func pool() -> MaxPool2d { MaxPool2d(kernelSize: 3, stride: 2, padding: 1) }
    return Sequential {
        Sequential {
            Conv2d(inputChannels, 64, kernelSize: 3, stride: 2, padding: 1, bias: false)
            BatchNorm2d(64)
            ReLU()
        }.named("features")
        if width == 2 { repeatChannels().named("cat0") }
        Reuse.lruNetBlock(planes: cfg[0], times: n).named("stage1")
        pool().named("mpool1")
        repeatChannels().named("cat1")
        Reuse.lruNetBlock(planes: cfg[1], times: n).named("stage2")
        pool().named("mpool2")
        repeatChannels().named("cat2")
        Reuse.lruNetBlock(planes: cfg[2], times: n).named("stage3")
        repeatChannels().named("cat3")
        Reuse.lruNetBlock(planes: cfg[3], times: n).named("stage4")
        pool().named("mpool4")
        Sequential {
            Conv2d(cfg[3], cfg[4], kernelSize: 1, groups: 8, bias: false)
            BatchNorm2d(cfg[4])
            ReLU()
            Dropout(dropout)
            Conv2d(cfg[4], classes, kernelSize: 1)
            ReLU()
            AvgPool2d(kernelSize: 2, stride: 1)
        }.named("classifier")
    }
}
