import ArgumentParser
import LruNet
#if canImport(Glibc)
import Glibc
#endif

@main
struct LruNetCommand: ParsableCommand {
    static func main() {
        // Past a file size limit (ulimit -f) write() should fail with EFBIG, which the checkpoint
        // writer reports, instead of SIGXFSZ killing the process mid-save.
        signal(SIGXFSZ, SIG_IGN)
        // OpenBLAS picks its kernels when it loads: a core weaker than the CPU needs a new process.
        BLASCoreChoice.apply()
        CrashInjection.installFromEnvironment()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "lrunet",
        abstract: "Layer Reuse Networks (Kopuklu et al., ICIP 2019) and the networks they are compared with: evaluate, predict, inspect, train, compare and time.",
        discussion: """
        Weights are safetensors files with PyTorch state-dict names and the authors' metadata \
        (arch: lrunet, mobilenet, mobilenetv2, shufflenet or shufflenetv2; width_mult; layer_reuse; \
        groups; num_classes; in_channels), or the authors' PyTorch .t7 files, read directly or \
        turned into safetensors by 'lrunet import'. A bare checkpoint name such as \
        'fashionmnist-lru10-09346' is looked up in $LRUNET_PRETRAINED, then ../shared/pretrained.

        Examples:
          lrunet eval --weights fashionmnist-lru10-09346
          lrunet import CNN-layer-reuse/pretrained/*.t7 --out-dir pretrained
          lrunet eval --weights fashionmnist-lru10-ckpt-09346.t7
          lrunet predict --weights cifar10-lru14-08934 --input x.npy --output y.npy
          lrunet info --weights fashionmnist-lru1-09117
          lrunet train --reuse 2 --epochs 8 --no-augment --out runs/fashion-lru2
          lrunet train --arch mobilenetv2 --width 0.25 --epochs 4 --out runs/mbv2
          lrunet study --reuse 1,10 --seeds 1,2,3 --epochs 15
          lrunet compare --out docs/compare
          lrunet bench --weights fashionmnist-shufflenetv2-025x-09342
        """,
        version: LruNetVersion.string,
        subcommands: [Eval.self, Predict.self, Info.self, Import.self, Train.self, Sweep.self, Study.self, Compare.self, Bench.self, Diff.self])
}
