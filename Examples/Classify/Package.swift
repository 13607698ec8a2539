// swift-tools-version:6.0
// A package that uses LruNet the way any other would: a path (or git) dependency, built with
// nothing but `swift build -c release`. `make test` builds and runs it and checks that it is as
// fast as the project's own `lrunet` binary.
import PackageDescription

let package = Package(
    name: "Classify",
    dependencies: [
        .package(name: "LruNet", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "Classify",
            dependencies: [.product(name: "LruNet", package: "LruNet")]),
    ]
)
