import XCTest
@testable import LruNet

/// Faults during training that must lose nothing (the process-level ones, kills and a full
/// disk, are in Tests/faults.sh): a run that diverges keeps its last good checkpoint, and the
/// recovery of an interrupted save finishes a committed one and discards an uncommitted one.
final class FaultTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "lrunet-faults-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func images(_ count: Int, scale: Float, seed: UInt64) -> LabeledImages {
        var rng = SplitMix64(seed: seed)
        return LabeledImages(images: randomArray(count * 28 * 28, &rng, scale: scale),
                             labels: (0..<count).map { Int32($0 % 10) }, channels: 1, height: 28, width: 28, numClasses: 10)
    }
    private func options(epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batchSize = 16; o.augment = false; o.seed = 5
        return o
    }
    private func network() throws -> Network {
        try Network(config: ModelConfig(arch: .lrunet, numClasses: 10, layerReuse: 2, inChannels: 1), threading: Threading(threads: 2))
    }
    private func bytes(_ name: String) -> Data? { FileManager.default.contents(atPath: directory + "/" + name) }

    /// Epoch 2 sees data so large that BatchNorm's running variance overflows (the loss stays
    /// finite, since BatchNorm normalises): the run stops before saving, and the checkpoint
    /// of epoch 1 is left byte for byte, with nothing pending beside it.
    func testDivergingRunKeepsItsLastGoodCheckpoint() throws {
        let test = images(32, scale: 1, seed: 2)
        try Trainer(model: network(), train: images(48, scale: 1, seed: 1), test: test, options: options(epochs: 1),
                    directory: directory, datasetName: "synthetic").run(resume: false)
        let model = try XCTUnwrap(bytes(Checkpoint.modelFile)), optimizer = try XCTUnwrap(bytes(Checkpoint.optimizerFile))

        let exploding = try Trainer(model: network(), train: images(48, scale: 1e30, seed: 1), test: test,
                                options: options(epochs: 2), directory: directory, datasetName: "synthetic")
        XCTAssertThrowsError(try exploding.run(resume: true)) { error in
            guard case let TrainingError.nonFiniteState(epoch: 1, tensor, value) = error else { return XCTFail("expected a non-finite state in epoch 2, got \(error)") }
            XCTAssertTrue(tensor.hasSuffix("running_var"), tensor)
            XCTAssertFalse(value.isFinite)
        }
        // A NaN pixel turns the loss NaN at the first step that sees it: the same.
        let clean = images(48, scale: 1, seed: 1)
        var pixels = clean.images
        pixels[5 * 28 * 28 + 100] = .nan
        let poisoned = LabeledImages(images: pixels, labels: clean.labels, channels: 1, height: 28, width: 28, numClasses: 10)
        let nan = try Trainer(model: network(), train: poisoned, test: test, options: options(epochs: 2),
                              directory: directory, datasetName: "synthetic")
        XCTAssertThrowsError(try nan.run(resume: true)) { error in
            guard case TrainingError.diverged(epoch: 1, _, let loss) = error else { return XCTFail("expected a NaN loss in epoch 2, got \(error)") }
            XCTAssertTrue(loss.isNaN)
        }
        XCTAssertEqual(bytes(Checkpoint.modelFile), model)
        XCTAssertEqual(bytes(Checkpoint.optimizerFile), optimizer)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".pending") || $0.contains(".tmp-") }, [])

        // The kept checkpoint resumes: with sane data the run completes epoch 2.
        let sane = try Trainer(model: network(), train: images(48, scale: 1, seed: 1), test: test, options: options(epochs: 2),
                               directory: directory, datasetName: "synthetic")
        XCTAssertTrue(try sane.run(resume: true))
        XCTAssertEqual(sane.history.count, 2)
    }

    /// The states a kill can leave between the two pending files and the final pair.
    func testRecoveryFinishesACommittedSaveAndDiscardsAnUncommittedOne() throws {
        let net = try network()
        net.initialise(seed: 1)
        try Checkpoint.save(net, directory: directory, metadata: ["epoch": "1"], optimizerMetadata: ["epoch": "1"])
        let oldModel = try XCTUnwrap(bytes(Checkpoint.modelFile)), oldOptimizer = try XCTUnwrap(bytes(Checkpoint.optimizerFile))
        let scratch = directory + "/next"
        try Checkpoint.prepare(directory: scratch)
        net.initialise(seed: 2)
        try Checkpoint.save(net, directory: scratch, metadata: ["epoch": "2"], optimizerMetadata: ["epoch": "2"])
        let newModel = try XCTUnwrap(bytes("next/" + Checkpoint.modelFile)), newOptimizer = try XCTUnwrap(bytes("next/" + Checkpoint.optimizerFile))
        XCTAssertNotEqual(newModel, oldModel)
        let fm = FileManager.default
        func put(_ data: Data, _ name: String) { XCTAssertTrue(fm.createFile(atPath: directory + "/" + name, contents: data)) }

        // Killed before the commit point: only the optimizer's pending file, and a stray temporary.
        put(newOptimizer, Checkpoint.optimizerFile + Checkpoint.pending)
        put(Data([1, 2, 3]), Checkpoint.modelFile + Checkpoint.pending + ".tmp-123")
        try Checkpoint.recover(directory: directory)
        XCTAssertEqual(bytes(Checkpoint.modelFile), oldModel)
        XCTAssertEqual(bytes(Checkpoint.optimizerFile), oldOptimizer)
        XCTAssertNil(bytes(Checkpoint.optimizerFile + Checkpoint.pending))
        XCTAssertNil(bytes(Checkpoint.modelFile + Checkpoint.pending + ".tmp-123"))

        // Killed after the commit point, before any rename: both are renamed.
        put(newOptimizer, Checkpoint.optimizerFile + Checkpoint.pending)
        put(newModel, Checkpoint.modelFile + Checkpoint.pending)
        XCTAssertTrue(Checkpoint.exists(directory: directory))
        try Checkpoint.recover(directory: directory)
        XCTAssertEqual(bytes(Checkpoint.modelFile), newModel)
        XCTAssertEqual(bytes(Checkpoint.optimizerFile), newOptimizer)

        // Killed between the two renames: the model's is finished.
        put(oldOptimizer, Checkpoint.optimizerFile)
        put(oldModel, Checkpoint.modelFile + Checkpoint.pending)
        let (meta, _) = try Checkpoint.load(into: net, directory: directory)
        XCTAssertEqual(meta["epoch"], "1")
        XCTAssertNil(bytes(Checkpoint.modelFile + Checkpoint.pending))
        XCTAssertEqual(bytes(Checkpoint.modelFile), oldModel)
    }

    /// A directory that cannot hold checkpoints is reported before any work.
    func testUnwritableDirectoryIsReportedAtTheStart() throws {
        let file = directory + "/plain"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data([0])))
        XCTAssertThrowsError(try Checkpoint.prepare(directory: file + "/run")) { error in
            XCTAssertTrue("\(error)".contains("cannot create the directory"), "\(error)")
        }
    }
}
