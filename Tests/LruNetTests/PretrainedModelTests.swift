import XCTest
@testable import LruNet

/// The model against the authors' 18 checkpoints: golden outputs, the test-set accuracy to the
/// image, and the size and cost figures of LRUNET-SPEC.md and BASELINES-SPEC.md.
final class PretrainedModelTests: XCTestCase {
    func shared() throws -> String {
        guard let dir = sharedDirectory else { throw XCTSkip("no ../shared/pretrained (set LRUNET_PRETRAINED)") }
        return dir
    }

    static let lruCheckpoints = ["fashionmnist-lru1-09117", "fashionmnist-lru10-09346", "cifar10-lru1-08391",
                                 "cifar10-lru14-08934", "cifar100-lru1-2x-06322", "cifar100-lru14-2x-06884"]
    static let baselineCheckpoints = [
        "fashionmnist-mobilenet-025x-09063", "fashionmnist-mobilenetv2-025x-09343", "fashionmnist-shufflenet-05x-09411",
        "fashionmnist-shufflenetv2-025x-09342", "cifar10-mobilenet-025x-08472", "cifar10-mobilenetv2-025x-08957",
        "cifar10-shufflenet-05x-090320", "cifar10-shufflenetv2-025x-089310", "cifar100-mobilenet-0.4x-06054",
        "cifar100-mobilenetv2-0.4x-06995", "cifar100-shufflenet-075x-06997", "cifar100-shufflenetv2-075x-06915",
    ]

    /// Within 1e-4 of the largest golden output, batched and one image at a time; LruNet on
    /// every kernel path this CPU has.
    func testGoldenOutputsOfAllEighteenCheckpoints() throws {
        let dir = try shared()
        for stem in Self.lruCheckpoints + Self.baselineCheckpoints {
            let model = try Network(contentsOf: "\(dir)/pretrained/\(stem).safetensors")
            let x = try Npy.read("\(dir)/golden/\(stem)-input.npy")
            let expected = try Npy.read("\(dir)/golden/\(stem)-logits.npy")
            let tol = 1e-4 * (expected.data.map(abs).max() ?? 1)
            let per = x.shape[1] * x.shape[2] * x.shape[3]
            func check(_ path: String) throws {
                let y = try model(x)
                XCTAssertEqual(y.shape, expected.shape)
                assertClose(y.data, expected.data, atol: tol, rtol: 0, "\(stem) \(path)")
                let first = try model(Tensor(shape: [1] + x.shape.dropFirst(), data: Array(x.data[0..<per])))
                assertClose(first.data, Array(expected.data[0..<expected.shape[1]]), atol: tol, rtol: 0, "\(stem) batch 1 \(path)")
            }
            try forEachKernelPath(check)      // all 18 checkpoints on every instruction-set path the CPU has
        }
    }

    func testFashionMNISTAccuracyToTheImage() throws {
        // Under ThreadSanitizer (make test-tsan) 60,000 forward passes take hours; the golden
        // test runs the same batched code on every checkpoint.
        if ProcessInfo.processInfo.environment["LRUNET_SKIP_FULL_TEST_SET"] != nil {
            throw XCTSkip("LRUNET_SKIP_FULL_TEST_SET is set (sanitizer run)")
        }
        let dir = try shared()
        let test = try DatasetKind.fashionMNIST.load(directory: "/usr/share/datasets/fashion-mnist", split: .test)
        XCTAssertEqual(test.count, 10_000)
        for (stem, correct) in [("fashionmnist-lru10-09346", 9346), ("fashionmnist-lru1-09117", 9117),
                                ("fashionmnist-mobilenet-025x-09063", 9063), ("fashionmnist-mobilenetv2-025x-09343", 9343),
                                ("fashionmnist-shufflenet-05x-09411", 9411), ("fashionmnist-shufflenetv2-025x-09342", 9342)] {
            let model = try Network(contentsOf: "\(dir)/pretrained/\(stem).safetensors")
            let r = try model.evaluate(test, batchSize: 500)
            XCTAssertEqual(r.correct, correct, stem)
            XCTAssertEqual(r.total, 10_000)
        }
    }

    /// Parameters and MACs per image of every baseline checkpoint, as BASELINES-SPEC.md lists them.
    func testBaselineSizesMatchSpecificationTable() throws {
        let dir = try shared()
        let table: [(String, Int, Double)] = [
            ("fashionmnist-mobilenet-025x-09063", 215_498, 3.71), ("fashionmnist-mobilenetv2-025x-09343", 248_978, 5.43),
            ("fashionmnist-shufflenet-05x-09411", 228_349, 7.98), ("fashionmnist-shufflenetv2-025x-09342", 210_650, 5.06),
            ("cifar10-mobilenet-025x-08472", 215_642, 4.02), ("cifar10-mobilenetv2-025x-08957", 249_122, 6.33),
            ("cifar10-shufflenet-05x-090320", 228_565, 10.04), ("cifar10-shufflenetv2-025x-089310", 211_082, 6.23),
            ("cifar100-mobilenet-0.4x-06054", 567_217, 9.78), ("cifar100-mobilenetv2-0.4x-06995", 603_248, 13.35),
            ("cifar100-shufflenet-075x-06997", 559_633, 21.93), ("cifar100-shufflenetv2-075x-06915", 568_408, 15.33),
        ]
        for (stem, params, macs) in table {
            let model = try Network(contentsOf: "\(dir)/pretrained/\(stem).safetensors")
            let side = stem.hasPrefix("fashion") ? 28 : 32
            let r = try model.costReport(height: side, width: side)
            XCTAssertEqual(r.parameters, params, stem)
            XCTAssertEqual(r.unrolledParameters, params, "\(stem): no reuse, nothing to unroll")
            XCTAssertEqual((Double(r.totalMACs) / 1e4).rounded() / 100, macs, stem)
            XCTAssertEqual(r.convBytesFetched, r.convBytesUnrolled, "\(stem): every conv weight is used once")
        }
    }

    func testCostReportMatchesSpecificationTable() throws {
        // (config, params, conv params, MACs, conv bytes unrolled, fetched) from LRUNET-SPEC.md.
        let rows: [(ModelConfig, Int, Int, Int, Double, Double)] = [
            (.lrunet(numClasses: 10, layerReuse: 1, inChannels: 1), 130_250, 123_850, 28, 0.50, 0.50),
            (.lrunet(numClasses: 10, layerReuse: 10, inChannels: 1), 182_090, 123_850, 28, 4.25, 0.50),
            (.lrunet(numClasses: 10, layerReuse: 14, inChannels: 3), 206_282, 125_002, 32, 5.92, 0.50),
            (.lrunet(numClasses: 100, widthMult: 2, layerReuse: 14, inChannels: 3), 663_716, 501_284, 32, 21.91, 2.01),
        ]
        let macs = [2.46, 22.91, 35.50, 122.25]
        for (i, (config, params, convParams, side, unrolled, fetched)) in rows.enumerated() {
            let r = try Network(config: config).costReport(height: side, width: side)
            XCTAssertEqual(r.parameters, params)
            XCTAssertEqual(r.convParameters, convParams)
            XCTAssertEqual((Double(r.totalMACs) / 1e4).rounded() / 100, macs[i])
            XCTAssertEqual((Double(r.convBytesUnrolled) / 1e4).rounded() / 100, unrolled)
            XCTAssertEqual((Double(r.convBytesFetched) / 1e4).rounded() / 100, fetched)
            XCTAssertEqual(r.convBytesFetched, 4 * convParams, "each conv weight fetched exactly once per pass")
        }
    }

    func testParameterCacheFetchesSharedWeightsOncePerPass() throws {
        let model = try Network(config: .lrunet(numClasses: 10, layerReuse: 3, inChannels: 1))
        _ = try model(Tensor(zeros: [2, 1, 28, 28]))
        // 4 blocks x (dw + pw) shared convs asked for 3 times each, plus 3 single-use convs (+1 bias).
        XCTAssertEqual(model.cache.conv.requests, 4 * 2 * 3 + 4)
        XCTAssertEqual(model.cache.conv.fetches, 4 * 2 + 4)
        // A second pass fetches again.
        _ = try model(Tensor(zeros: [1, 1, 28, 28]))
        XCTAssertEqual(model.cache.conv.fetches, 12)
    }

    func testBadInputsAreTypedErrors() throws {
        let model = try Network(config: .lrunet(numClasses: 10, layerReuse: 1, inChannels: 1))
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 3, 28, 28]))) { XCTAssertEqual($0 as? ModelError, .inputChannels(expected: 1, got: 3)) }
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 1, 64, 64]))) { XCTAssertEqual($0 as? ModelError, .outputMap(height: 64, width: 64, map: [3, 3])) }
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 1, 3, 3]))) {
            guard case .imageSize(3, 3, _)? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try model(Tensor(zeros: [1, 28, 28]))) { XCTAssertEqual($0 as? ModelError, .inputRank(got: [1, 28, 28])) }
        XCTAssertThrowsError(try model(Tensor(zeros: [0, 1, 28, 28]))) { XCTAssertEqual($0 as? ModelError, .emptyBatch) }
        XCTAssertThrowsError(try model.trainStep(images: Tensor(zeros: [2, 1, 28, 28]), labels: [1], optimizer: SGD(), learningRate: 0.1, seed: 0)) {
            XCTAssertEqual($0 as? ModelError, .labelCount(expected: 2, got: 1))
        }
        XCTAssertThrowsError(try model.trainStep(images: Tensor(zeros: [2, 1, 28, 28]), labels: [1, 10], optimizer: SGD(), learningRate: 0.1, seed: 0)) {
            XCTAssertEqual($0 as? ModelError, .label(index: 1, value: 10, classes: 10))
        }
        XCTAssertThrowsError(try ModelConfig(metadata: ["arch": "resnet"])) { XCTAssertEqual($0 as? ModelError, .unsupportedArchitecture("resnet")) }
        XCTAssertThrowsError(try ModelConfig(metadata: ["arch": "lrunet", "num_classes": "ten", "width_mult": "1", "layer_reuse": "1", "in_channels": "1"])) {
            XCTAssertEqual($0 as? ModelError, .badMetadata(key: "num_classes", value: "ten"))
        }
        XCTAssertThrowsError(try ModelConfig(metadata: ["arch": "shufflenetv2", "num_classes": "10", "width_mult": "0.3", "in_channels": "1"])) {
            guard case .invalidConfig(field: "width_mult", value: "0.3", _)? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Network(config: ModelConfig(arch: .shufflenet, widthMult: 0.1, groups: 3))) {
            guard case .invalidConfig(field: "width_mult", _, _)? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try ModelConfig(metadata: ["arch": "lrunet", "num_classes": "10", "width_mult": "1", "layer_reuse": "100000", "in_channels": "1"])) {
            guard case .invalidConfig(field: "layer_reuse", _, _)? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
    }

    /// The metadata a checkpoint is written with reads back as the same configuration.
    func testMetadataRoundTrip() throws {
        for config in [ModelConfig.lrunet(numClasses: 100, widthMult: 2, layerReuse: 14, inChannels: 3),
                       ModelConfig(arch: .mobilenet, numClasses: 10, widthMult: 0.25, inChannels: 1),
                       ModelConfig(arch: .mobilenetv2, numClasses: 100, widthMult: 0.4, inChannels: 3),
                       ModelConfig(arch: .shufflenet, numClasses: 10, widthMult: 1, groups: 8, inChannels: 1),
                       ModelConfig(arch: .shufflenetv2, numClasses: 10, widthMult: 0.75, inChannels: 3)] {
            XCTAssertEqual(try ModelConfig(metadata: config.metadata), config, "\(config.metadata)")
        }
        XCTAssertEqual(ModelConfig(arch: .mobilenetv2, widthMult: 0.4).metadata["width_mult"], "0.4")
    }
}
