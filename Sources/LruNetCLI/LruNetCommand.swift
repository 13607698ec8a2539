import ArgumentParser

@main
struct LruNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lrunet",
        abstract: "Layer Reuse Networks (Kopuklu et al., ICIP 2019) on OpenBLAS: evaluate, predict, inspect, train and time.",
        discussion: """
        Weights are safetensors files with PyTorch state-dict names and the authors' metadata \
        (arch, layer_reuse, width_mult, num_classes, in_channels). A bare checkpoint name such as \
        'fashionmnist-lru10-09346' is looked up in $LRUNET_PRETRAINED, then ../shared/pretrained.

        Examples:
          lrunet eval --weights fashionmnist-lru10-09346
          lrunet predict --weights cifar10-lru14-08934 --input x.npy --output y.npy
          lrunet info --weights fashionmnist-lru1-09117
          lrunet train --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2
          lrunet bench --weights fashionmnist-lru10-09346
        """,
        subcommands: [Eval.self, Predict.self, Info.self, Train.self, Sweep.self, Bench.self])
}
