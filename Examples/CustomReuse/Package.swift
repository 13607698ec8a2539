// swift-tools-version:6.0
// A reused network of your own, through the public graph: defined, trained for one epoch on
// Fashion-MNIST, saved, reloaded and evaluated. Built with nothing but `swift build -c release`;
// `make test` runs it.
import PackageDescription

let package = Package(
    name: "CustomReuse",
    dependencies: [
        .package(name: "LruNet", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "CustomReuse",
            dependencies: [.product(name: "LruNet", package: "LruNet")]),
    ]
)
