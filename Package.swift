// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "LruNet",
    products: [
        .library(name: "LruNet", targets: ["LruNet"]),
        .executable(name: "lrunet", targets: ["LruNetCLI"]),
        .executable(name: "lrunet-bench", targets: ["LruNetBench"]),
    ],
    // `--traits MPI` builds the data-parallel trainer over Open MPI (libopenmpi-dev); without
    // it nothing here needs mpi.h (docs/distributed.md).
    traits: [
        .trait(name: "MPI", description: "Data-parallel training over Open MPI: mpirun -np K lrunet train ..."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries: module maps live under Modules/.
        .systemLibrary(
            name: "COpenBLAS", path: "Modules/COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Modules/CZlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev"])]),

        // The hot kernels in C, compiled per instruction set (baseline, AVX2, AVX-512) in one
        // binary and chosen at run time: no compiler flag, so every build is the fast build.
        .target(
            name: "CLruNetKernels",
            path: "Sources/CLruNetKernels"),

        // The engine: tensors, kernels, layers, graph, models, IO, training.
        .target(
            name: "LruNet",
            dependencies: ["COpenBLAS", "CZlib", "CLruNetKernels"],
            path: "Sources/LruNet"),

        // Process groups over Open MPI; empty unless the MPI trait is on.
        .target(
            name: "LruNetMPI",
            dependencies: ["LruNet", .target(name: "CMPI", condition: .when(traits: ["MPI"]))],
            path: "Sources/LruNetMPI"),

        // Allocation counting for the benchmark and the tests (interposes malloc; not in the library).
        .target(
            name: "CAllocCounter",
            path: "Sources/CAllocCounter"),

        // The command line and the benchmark.
        .executableTarget(
            name: "LruNetCLI",
            dependencies: ["LruNet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .target(name: "LruNetMPI", condition: .when(traits: ["MPI"]))],
            path: "Sources/LruNetCLI"),
        .executableTarget(
            name: "LruNetBench",
            dependencies: ["LruNet", "COpenBLAS", "CAllocCounter", "CLruNetKernels",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/LruNetBench"),

        // What each fuzz harness (Fuzz/) does with an input; the tests replay the corpus through it.
        .target(
            name: "LruNetFuzzTargets",
            dependencies: ["LruNet"],
            path: "Sources/LruNetFuzzTargets"),

        .testTarget(
            name: "LruNetTests",
            dependencies: ["LruNet", "LruNetFuzzTargets", "COpenBLAS", "CZlib", "CAllocCounter", "CLruNetKernels"],
            path: "Tests/LruNetTests"),
    ],
    swiftLanguageModes: [.v6]
)
