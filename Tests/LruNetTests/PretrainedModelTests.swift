import XCTest
@testable import LruNet

/// The model against the authors' checkpoints: golden outputs, the test-set
/// accuracy to the image, and the cost figures of the specification.
final class PretrainedModelTests: XCTestCase {
    func shared() throws -> String {
        guard let dir = sharedDirectory else { throw XCTSkip("no ../shared/pretrained (set LRUNET_PRETRAINED)") }
        return dir
    }

    static let lruCheckpoints = ["fashionmnist-lru1-09117", "fashionmnist-lru10-09346", "cifar10-lru1-08391",
                                 "cifar10-lru14-08934", "cifar100-lru1-2x-06322", "cifar100-lru14-2x-06884"]

    /// On every kernel path this CPU has.
    func testGoldenOutputsOfAllSixCheckpoints() throws {
        let dir = try shared()
        for stem in Self.lruCheckpoints {
            let model = try LruNet(contentsOf: "\(dir)/pretrained/\(stem).safetensors")
            let x = try Npy.read("\(dir)/golden/\(stem)-input.npy")
            let expected = try Npy.read("\(dir)/golden/\(stem)-logits.npy")
            let tol = 1e-4 * (expected.data.map(abs).max() ?? 1)
            let per = x.shape[1] * x.shape[2] * x.shape[3]
            try forEachKernelPath { path in
                // Batched and one image at a time must both agree.
                let y = try model(x)
                XCTAssertEqual(y.shape, expected.shape)
                assertClose(y.data, expected.data, atol: tol, rtol: 0, "\(stem) \(path)")
                let first = try model(Tensor(shape: [1] + x.shape.dropFirst(), data: Array(x.data[0..<per])))
                assertClose(first.data, Array(expected.data[0..<expected.shape[1]]), atol: tol, rtol: 0, "\(stem) batch 1 \(path)")
            }
        }
    }

    func testFashionMNISTAccuracyToTheImage() throws {
        let dir = try shared()
        let test = try DatasetKind.fashionMNIST.load(directory: "/usr/share/datasets/fashion-mnist", split: .test)
        XCTAssertEqual(test.count, 10_000)
        for (stem, correct) in [("fashionmnist-lru10-09346", 9346), ("fashionmnist-lru1-09117", 9117)] {
            let model = try LruNet(contentsOf: "\(dir)/pretrained/\(stem).safetensors")
            let r = try model.evaluate(test, batchSize: 500)
            XCTAssertEqual(r.correct, correct, stem)
            XCTAssertEqual(r.total, 10_000)
        }
    }

    func testCostReportMatchesSpecificationTable() throws {
        // (config, params, conv params, MACs, conv bytes unrolled, fetched) from LRUNET-SPEC.md.
        let rows: [(LruNetConfig, Int, Int, Int, Double, Double)] = [
            (LruNetConfig(numClasses: 10, layerReuse: 1, inChannels: 1), 130_250, 123_850, 28, 0.50, 0.50),
            (LruNetConfig(numClasses: 10, layerReuse: 10, inChannels: 1), 182_090, 123_850, 28, 4.25, 0.50),
            (LruNetConfig(numClasses: 10, layerReuse: 14, inChannels: 3), 206_282, 125_002, 32, 5.92, 0.50),
            (LruNetConfig(numClasses: 100, widthMult: 2, layerReuse: 14, inChannels: 3), 663_716, 501_284, 32, 21.91, 2.01),
        ]
        let macs = [2.46, 22.91, 35.50, 122.25]
        for (i, (config, params, convParams, side, unrolled, fetched)) in rows.enumerated() {
            let r = try LruNet(config: config).costReport(height: side, width: side)
            XCTAssertEqual(r.parameters, params)
            XCTAssertEqual(r.convParameters, convParams)
            XCTAssertEqual((Double(r.totalMACs) / 1e4).rounded() / 100, macs[i])
            XCTAssertEqual((Double(r.convBytesUnrolled) / 1e4).rounded() / 100, unrolled)
            XCTAssertEqual((Double(r.convBytesFetched) / 1e4).rounded() / 100, fetched)
            XCTAssertEqual(r.convBytesFetched, 4 * convParams, "each conv weight fetched exactly once per pass")
        }
    }

    func testParameterCacheFetchesSharedWeightsOncePerPass() throws {
        let model = try LruNet(config: LruNetConfig(numClasses: 10, layerReuse: 3, inChannels: 1))
        _ = try model(Tensor(zeros: [2, 1, 28, 28]))
        // 4 blocks x (dw + pw) shared convs asked for 3 times each, plus 3 single-use convs (+1 bias).
        XCTAssertEqual(model.cache.conv.requests, 4 * 2 * 3 + 4)
        XCTAssertEqual(model.cache.conv.fetches, 4 * 2 + 4)
        // A second pass fetches again.
        _ = try model(Tensor(zeros: [1, 1, 28, 28]))
        XCTAssertEqual(model.cache.conv.fetches, 12)
    }

    func testBadInputShapesAreErrors() throws {
        let model = try LruNet(config: LruNetConfig(numClasses: 10, layerReuse: 1, inChannels: 1))
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 3, 28, 28]))) { XCTAssertTrue("\($0)".contains("input channel")) }
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 1, 64, 64]))) { XCTAssertTrue("\($0)".contains("64x64")) }
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 28, 28]))) { XCTAssertTrue("\($0)".contains("[N, C, H, W]")) }
        XCTAssertThrowsError(try LruNetConfig(metadata: ["arch": "resnet"])) { XCTAssertTrue("\($0)".contains("resnet")) }
        XCTAssertThrowsError(try LruNetConfig(metadata: ["arch": "lrunet", "num_classes": "ten", "width_mult": "1", "layer_reuse": "1", "in_channels": "1"]))
    }
}
