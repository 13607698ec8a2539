import XCTest
@testable import LruNet

/// The legacy torch.save reader and the import: the authors' 18 files against their converted
/// copies, hostile pickles (each refused with a line naming what it tried), truncations, and
/// the metadata inference with its file-name notes and overrides.
final class TorchImportTests: XCTestCase {
    /// A pickle written opcode by opcode, to make the files a hostile author would make.
    struct PickleBytes {
        var bytes: [UInt8] = [0x80, 2]
        mutating func op(_ code: UInt8, _ payload: [UInt8] = []) { bytes.append(code); bytes += payload }
        mutating func string(_ s: String) { let u = Array(s.utf8); op(0x58, le(UInt32(u.count)) + u) }
        mutating func int(_ v: Int) { op(0x4A, le(UInt32(truncatingIfNeeded: v))) }
        mutating func global(_ module: String, _ name: String) { op(0x63, Array("\(module)\n\(name)\n".utf8)) }
        mutating func stop() -> [UInt8] { op(0x2E); return bytes }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    /// The three pickles before the object: magic, protocol version, little-endian system info.
    static var preamble: [UInt8] {
        var magic = PickleBytes(); magic.op(0x8A, [10] + TorchCheckpoint.magic)
        var version = PickleBytes(); version.op(0x4D, [0xE9, 0x03])
        var info = PickleBytes(); info.op(0x7D); info.string("little_endian"); info.op(0x88); info.op(0x73)
        return magic.stop() + version.stop() + info.stop()
    }

    /// A complete checkpoint `{'net': OrderedDict(name: tensor), 'acc': 93.5, 'epoch': 7}` whose
    /// tensors each have their own storage, with `edit` applied to the object pickle's opcodes.
    /// With `shared`, every tensor names the first tensor's storage (only its bytes are written).
    static func checkpoint(_ tensors: [(String, [Int], [Float])], storageType: String = "FloatStorage", shared: Bool = false,
                           edit: (inout PickleBytes) -> Void = { _ in }) -> Data {
        var p = PickleBytes()
        p.op(0x7D); p.op(0x28)                                            // {  MARK
        p.string("net"); p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52); p.op(0x28)
        for (i, (name, shape, values)) in tensors.enumerated() {
            p.string(name); p.global("torch._utils", "_rebuild_tensor_v2"); p.op(0x28)
            p.op(0x28); p.string("storage"); p.global("torch", storageType); p.string(shared ? "k0" : "k\(i)"); p.string("cpu"); p.int(values.count); p.op(0x4E); p.op(0x74)
            p.op(0x51)                                                    // BINPERSID
            p.int(0)
            p.op(0x28); shape.forEach { p.int($0) }; p.op(0x74)
            var stride: [Int] = [], s = 1
            for d in shape.reversed() { stride.insert(s, at: 0); s *= d }
            p.op(0x28); stride.forEach { p.int($0) }; p.op(0x74)
            p.op(0x89); p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52)
            p.op(0x74); p.op(0x52)                                        // args TUPLE, REDUCE
        }
        p.op(0x75)                                                        // SETITEMS into the OrderedDict
        p.string("acc"); p.op(0x47, withUnsafeBytes(of: (93.5 as Double).bitPattern.bigEndian) { Array($0) })
        p.string("epoch"); p.int(7)
        edit(&p)
        p.op(0x75)                                                        // SETITEMS into the dict
        var keys = PickleBytes(); keys.op(0x5D); keys.op(0x28)
        for i in tensors.indices where !shared || i == 0 { keys.string("k\(i)") }
        keys.op(0x65)
        var out = preamble + p.stop() + keys.stop()
        for (_, _, values) in shared ? Array(tensors.prefix(1)) : tensors {
            out += PickleBytes().le(Int64(values.count))
            for v in values { out += PickleBytes().le(v.bitPattern) }
        }
        return Data(out)
    }

    func refusal(_ data: Data, file: StaticString = #filePath, line: UInt = #line) -> String {
        do { _ = try TorchCheckpoint(data: data, name: "x.t7"); XCTFail("accepted", file: file, line: line); return "" }
        catch {
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), message, file: file, line: line)
            return message
        }
    }

    func testReadsAWrittenCheckpoint() throws {
        let data = Self.checkpoint([("module.a.weight", [2, 3], [1, 2, 3, 4, 5, 6]), ("module.b", [4], [-1, 0.5, 0, 7])])
        let c = try TorchCheckpoint(data: data)
        XCTAssertEqual(c.tensors.map(\.name), ["module.a.weight", "module.b"])
        XCTAssertEqual(c.tensors[0].tensor.shape, [2, 3])
        XCTAssertEqual(c.tensors[0].tensor.data, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(c.tensors[1].tensor.data, [-1, 0.5, 0, 7])
        XCTAssertEqual(c.accuracy, 93.5)
        XCTAssertEqual(c.epoch, 7)
    }

    /// Files Python's pickler wrote in the legacy layout (Fuzz/make_seeds.py): a storage view, and
    /// one storage two tensors share.
    func testViewsAndSharedStoragesAsPythonWritesThem() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/regressions/t7").path
        let view = try TorchCheckpoint(path: dir + "/reader-view")
        XCTAssertEqual(view.tensors.first?.tensor.data, [2, 3, 4, 5])
        let shared = try TorchCheckpoint(path: dir + "/reader-shared-storage")
        XCTAssertEqual(shared.tensors.map(\.tensor.shape), [[2, 3], [6]])
        XCTAssertNotEqual(shared.tensors[0].tensor.data, shared.tensors[1].tensor.data, "b starts 6 values into the storage a starts")
        XCTAssertEqual(try TorchCheckpoint(path: dir + "/reader-small").tensors.first?.name, "module.features.0.weight")
    }

    /// A safetensors file starts with its header length: one of 896 bytes (0x380) starts with the
    /// byte a pickle starts with, and must still be read as safetensors.
    func testASafetensorsFileIsNotTakenForAPickle() throws {
        let values: [Float] = [1, 2, 3]
        func file(pad: Int) throws -> Data {
            try SafeTensorsFile.encode(tensors: [("w", [3], values)], metadata: ["pad": String(repeating: "x", count: pad)])
        }
        let length = { (d: Data) in Int(d.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) }
        let data = try file(pad: 896 - length(try file(pad: 0)))
        XCTAssertEqual(length(data), 896)
        XCTAssertEqual(data[data.startIndex], 0x80)
        XCTAssertEqual(try SafeTensorsFile.checkpoint(data: data, name: "x").file.array("w"), values)
    }

    func testRefusesCodeAndNamesWhatWasTried() {
        // The classic: os.system through REDUCE, as the object itself or inside the state dict.
        var evil = PickleBytes(); evil.global("posix", "system"); evil.string("touch /tmp/pwned"); evil.op(0x85); evil.op(0x52)
        XCTAssertTrue(refusal(Data(Self.preamble + evil.stop())).contains("pickle global 'posix system' is not allowed"))
        XCTAssertTrue(refusal(Self.checkpoint([("a", [1], [1])]) { p in
            p.string("x"); p.global("builtins", "eval"); p.string("1"); p.op(0x85); p.op(0x52)
        }).contains("'builtins eval'"))
        var stack = PickleBytes(); stack.string("os"); stack.string("system"); stack.op(0x93)
        XCTAssertTrue(refusal(Data(Self.preamble + stack.stop())).contains("'os system'"))
        // Opcodes that build objects or reach the extension registry.
        for (code, name) in [(0x69, "INST"), (0x6F, "OBJ"), (0x81, "NEWOBJ"), (0x92, "NEWOBJ_EX"), (0x82, "EXT1"), (0x50, "PERSID"), (0x8B, "LONG4")] as [(UInt8, String)] {
            var p = PickleBytes(); p.op(code, [0, 0, 0, 0])
            XCTAssertTrue(refusal(Data(Self.preamble + p.stop())).contains("opcode \(name)"), name)
        }
        // REDUCE of an allowed global with arguments it never gets in a state dict.
        var reduce = PickleBytes(); reduce.global("collections", "OrderedDict"); reduce.string("x"); reduce.op(0x85); reduce.op(0x52)
        XCTAssertTrue(refusal(Data(Self.preamble + reduce.stop())).contains("REDUCE of collections.OrderedDict"))
        // A storage of another element type.
        XCTAssertTrue(refusal(Self.checkpoint([("a", [1], [1])], storageType: "DoubleStorage")).contains("'torch DoubleStorage'"))
    }

    func testBoundsOnMemoNestingCyclesAndSizes() {
        var memo = PickleBytes(); memo.op(0x68, [5])
        XCTAssertTrue(refusal(Data(Self.preamble + memo.stop())).contains("memo index 5"))
        var marks = PickleBytes(); for _ in 0..<40 { marks.op(0x28) }
        XCTAssertTrue(refusal(Data(Self.preamble + marks.stop())).contains("nests deeper"))
        var tuples = PickleBytes(); tuples.op(0x4E); for _ in 0..<40 { tuples.op(0x85) }
        XCTAssertTrue(refusal(Data(Self.preamble + tuples.stop())).contains("nests deeper"))
        var cycle = PickleBytes(); cycle.op(0x5D); cycle.op(0x71, [0]); cycle.op(0x68, [0]); cycle.op(0x61)
        XCTAssertTrue(refusal(Data(Self.preamble + cycle.stop())).contains("after it was placed"))
        // A storage id claiming more elements than the file holds, and data that disagrees with it.
        let good = Self.checkpoint([("a", [2], [1, 2])])
        XCTAssertTrue(refusal(Self.checkpoint([("a", [1], [1])]) { p in
            p.string("b"); p.op(0x28); p.string("storage"); p.global("torch", "FloatStorage"); p.string("huge"); p.string("cpu")
            p.int(1 << 30); p.op(0x4E); p.op(0x74); p.op(0x51)
        }).contains("larger than the file"))
        XCTAssertTrue(refusal(good + Data([0])).contains("1 bytes after the last storage"))
        // One storage read by many tensors: at most four times the values the file holds (64 x
        // 4096 values from a 26 KB file would be 1 MB; the same trick at scale, gigabytes). Two
        // tensors on one storage (tied weights) still load.
        let many = (0..<64).map { ("t\($0)", [4096], [Float](repeating: 1, count: 4096)) }
        XCTAssertTrue(refusal(Self.checkpoint(many, shared: true)).contains("more values than four times"))
        XCTAssertEqual(try TorchCheckpoint(data: Self.checkpoint(Array(many.prefix(2)), shared: true)).tensors.count, 2)
        // Every truncation is an error, never a trap.
        for cut in stride(from: 0, to: good.count, by: 7) { _ = refusal(good.prefix(cut)) }
    }

    func testTheAuthorsFilesImportBitIdenticalToTheConvertedOnes() throws {
        guard let shared = sharedDirectory, FileManager.default.fileExists(atPath: shared + "/authors") else {
            throw XCTSkip("no ../shared/authors")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: shared + "/authors").filter { $0.hasSuffix(".t7") }.sorted()
        XCTAssertEqual(files.count, 18)
        for file in files {
            let imported = try ImportedCheckpoint(TorchCheckpoint(path: shared + "/authors/" + file), fileName: file)
            var stem = file.replacingOccurrences(of: "-ckpt", with: "").replacingOccurrences(of: ".t7", with: "")
            if stem.hasPrefix("fmnist-") { stem = "fashionmnist-" + stem.dropFirst(7) }
            let converted = try SafeTensorsFile(path: shared + "/pretrained/\(stem).safetensors")
            for key in ["arch", "num_classes", "width_mult", "in_channels", "layer_reuse", "groups", "dataset", "epoch", "reported_test_accuracy"] {
                XCTAssertEqual(imported.metadata[key], converted.metadata[key], "\(file): \(key)")
            }
            XCTAssertEqual(imported.tensors.map(\.name).sorted(), converted.names, file)
            for (name, tensor) in imported.tensors {
                XCTAssertEqual(tensor.shape, converted.tensors[name]?.shape, "\(file): \(name)")
                XCTAssertEqual(tensor.data.map(\.bitPattern), try converted.array(name).map(\.bitPattern), "\(file): \(name)")
            }
            XCTAssertEqual(imported.notes, [], file)
        }
    }

    func testTheFileNameIsComparedNotTrustedAndOverridesMustFit() throws {
        guard let shared = sharedDirectory, FileManager.default.fileExists(atPath: shared + "/authors") else {
            throw XCTSkip("no ../shared/authors")
        }
        let lru10 = try TorchCheckpoint(path: shared + "/authors/fashionmnist-lru10-ckpt-09346.t7")
        let renamed = try ImportedCheckpoint(lru10, fileName: "cifar100-mobilenet-2x-ckpt-1.t7")
        XCTAssertEqual(renamed.config, .lrunet(numClasses: 10, layerReuse: 10, inChannels: 1))
        XCTAssertEqual(renamed.notes, [
            "the file name says architecture mobilenet; the tensors say lrunet, which is used",
            "the file name says width 2; the tensors say 1, which is used",
            "the file name says data set cifar100; the tensors say fashion-mnist, which is used",
        ])
        XCTAssertEqual(try ImportedCheckpoint(lru10, fileName: "x.t7").notes, [])
        XCTAssertThrowsError(try ImportedCheckpoint(lru10, fileName: "x.t7", overrides: ImportOverrides(widthMult: 2))) {
            XCTAssertTrue("\($0)".contains("fit no lrunet configuration"), "\($0)")
        }
        XCTAssertThrowsError(try ImportedCheckpoint(lru10, fileName: "x.t7", overrides: ImportOverrides(arch: .mobilenet))) {
            XCTAssertTrue("\($0)".contains("mobilenet"), "\($0)")
        }
        // The one load path: a .t7 through Network(contentsOf:) runs like its safetensors copy.
        let fromT7 = try Network(contentsOf: shared + "/authors/fashionmnist-lru10-ckpt-09346.t7", threading: Threading(threads: 1))
        let fromSafetensors = try Network(contentsOf: shared + "/pretrained/fashionmnist-lru10-09346.safetensors", threading: Threading(threads: 1))
        var rng = SplitMix64(seed: 4)
        let x = Tensor(shape: [2, 1, 28, 28], data: (0..<(2 * 784)).map { _ in rng.nextUniform() })
        XCTAssertEqual(try fromT7(x).data, try fromSafetensors(x).data)
    }
}
