import XCTest
import CZlib
@testable import LruNet

/// safetensors, .npy, IDX and CIFAR: round trips, and a clear error for every bad file.
final class IOTests: XCTestCase {
    func write(_ bytes: [UInt8], _ name: String) -> String {
        let p = temporaryPath(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func safetensorsBytes(header: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + data
    }

    func testSafeTensorsRoundTripKeepsValuesAndMetadata() throws {
        let a: [Float] = [1, -2.5, 3e-8, .greatestFiniteMagnitude], b: [Float] = (0..<6).map { Float($0) / 7 }
        let path = temporaryPath("rt.safetensors")
        try a.withUnsafeBufferPointer { pa in try b.withUnsafeBufferPointer { pb in
            try SafeTensorsFile.write(tensors: [("x.weight", [2, 2], pa), ("y", [3, 2], pb)], metadata: ["arch": "lrunet", "k": "v"], to: path)
        } }
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.metadata, ["arch": "lrunet", "k": "v"])
        XCTAssertEqual(f.names, ["x.weight", "y"])
        XCTAssertEqual(f.tensors["y"]?.shape, [3, 2])
        XCTAssertEqual(try f.array("x.weight"), a)
        XCTAssertEqual(try f.array("y"), b)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"), "temporary file left behind")
    }

    func testSafeTensorsRejectsBadFiles() {
        func expectError(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
            let p = write(bytes, "bad-\(line).safetensors")
            XCTAssertThrowsError(try SafeTensorsFile(path: p), line: line) { e in
                XCTAssertTrue("\(e)".contains(fragment), "'\(e)' lacks '\(fragment)'", line: line)
            }
        }
        expectError([1, 2, 3], "truncated")
        expectError(withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init), "exceeds")        // hostile length
        expectError(withUnsafeBytes(of: UInt64(500).littleEndian, Array.init) + [0x7B], "header says 500")
        expectError(safetensorsBytes(header: "not json"), "not valid JSON")
        expectError(safetensorsBytes(header: #"{"a":1,"a":2}"#), "duplicate key")
        expectError(safetensorsBytes(header: #"{"a":"# + String(repeating: "[", count: 20_000)), "nested deeper")
        expectError(safetensorsBytes(header: #"{"__metadata__":{"arch":7}}"#), "not a string")
        // The ranges must tile the data section, as the reference implementation requires.
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)), "starts at byte 4")
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                                     data: [UInt8](repeating: 0, count: 8)), "must not overlap")
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [UInt8](repeating: 0, count: 12)), "after the last tensor")
        expectError(safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0]), "truncated")
        expectError(safetensorsBytes(header: #"{"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "unknown dtype")
        expectError(safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[4000000000,4000000000,4000000000],"data_offsets":[0,4]}}"#), "too large")
        expectError(safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "do not hold")
        expectError(safetensorsBytes(header: #"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "bad shape")
        XCTAssertThrowsError(try SafeTensorsFile(path: "/nonexistent/x.safetensors")) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    func testModelLoadRejectsMissingExtraAndMisshapenTensors() throws {
        let model = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 1, inChannels: 1))
        var tensors = model.stateDict()
        let path = temporaryPath("partial.safetensors")
        var partial = tensors
        partial["stage1.dw.weight"] = nil
        try SafeTensorsFile.write(tensors: partial, metadata: [:], to: path)
        XCTAssertThrowsError(try model.load(SafeTensorsFile(path: path))) {
            XCTAssertEqual($0 as? ModelError, .missingTensor(name: "stage1.dw.weight"))
        }
        tensors["stage9.bogus"] = Tensor(shape: [1], data: [1])
        try SafeTensorsFile.write(tensors: tensors, metadata: [:], to: path)
        XCTAssertThrowsError(try model.load(SafeTensorsFile(path: path))) { XCTAssertEqual($0 as? ModelError, .unexpectedTensor(name: "stage9.bogus")) }
        // A lru1 file loaded into a lru2 model: the second iteration's BN tensors are missing.
        try SafeTensorsFile.write(tensors: model.stateDict(), metadata: [:], to: path)
        let lru2 = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 2, inChannels: 1))
        XCTAssertThrowsError(try lru2.load(SafeTensorsFile(path: path))) { XCTAssertTrue("\($0)".contains("dw_bn_list.1")) }
        // Same names, other shapes: a 3-channel model against 1-channel weights.
        let rgb = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 1, inChannels: 3))
        XCTAssertThrowsError(try rgb.load(SafeTensorsFile(path: path))) {
            XCTAssertEqual($0 as? ModelError, .shapeMismatch(name: "features.0.weight", expected: [64, 3, 3, 3], got: [64, 1, 3, 3]))
        }
    }

    func testNpyRoundTripAndErrors() throws {
        let t = Tensor(shape: [2, 1, 2, 3], data: (0..<12).map { Float($0) * 0.5 })
        let p = temporaryPath("x.npy")
        try Npy.write(t, to: p)
        XCTAssertEqual(try Npy.read(p), t)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        XCTAssertEqual((10 + Int(bytes[8])) % 64, 0, "header must align the data to 64 bytes")
        try Npy.write(Tensor(shape: [5], data: [1, 2, 3, 4, 5]), to: p)
        XCTAssertEqual(try Npy.read(p).shape, [5])

        func header(_ h: String) -> [UInt8] {
            var s = h; while (10 + s.utf8.count + 1) % 64 != 0 { s += " " }; s += "\n"
            return Npy.magic + [1, 0, UInt8(s.utf8.count & 0xFF), UInt8(s.utf8.count >> 8)] + Array(s.utf8)
        }
        let f8 = write(header("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }") + [UInt8](repeating: 0, count: 16), "f8.npy")
        XCTAssertThrowsError(try Npy.read(f8)) { XCTAssertTrue("\($0)".contains("'<f8'")) }
        let short = write(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }") + [0, 0, 0, 0], "short.npy")
        XCTAssertThrowsError(try Npy.read(short)) { XCTAssertTrue("\($0)".contains("truncated")) }
        let fortran = write(header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }") + [0, 0, 0, 0], "fortran.npy")
        XCTAssertThrowsError(try Npy.read(fortran)) { XCTAssertTrue("\($0)".contains("Fortran")) }
        let junk = write(Array("hello world, not numpy".utf8), "junk.npy")
        XCTAssertThrowsError(try Npy.read(junk)) { XCTAssertTrue("\($0)".contains("magic")) }
    }

    func testIDXReadsGzipAndPlainAndRejectsLies() throws {
        let dir = temporaryPath("idx")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pixels: [UInt8] = (0..<(3 * 2 * 2)).map { UInt8($0 * 20) }
        let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2] + pixels
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]
        // Images gzip-compressed (through zlib, as Debian ships them), labels plain.
        let gz = gzopen(dir + "/t10k-images-idx3-ubyte.gz", "wb")!
        _ = images.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
        _ = FileManager.default.createFile(atPath: dir + "/t10k-labels-idx1-ubyte", contents: Data(labels))
        let set = try FashionMNIST.load(directory: dir, split: .test)
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual(set.labels, [7, 0, 9])
        XCTAssertEqual([set.height, set.width, set.channels], [2, 2, 1])
        assertClose(set.images, pixels.map { Float($0) / 255 }, atol: 0)
        // A header that claims more images than the file holds.
        var lying = images; lying[7] = 200
        _ = FileManager.default.createFile(atPath: dir + "/t10k-images-idx3-ubyte.gz", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/t10k-images-idx3-ubyte", contents: Data(lying))
        try FileManager.default.removeItem(atPath: dir + "/t10k-images-idx3-ubyte.gz")
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir, split: .test)) { XCTAssertTrue("\($0)".contains("truncated")) }
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir, split: .train)) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    /// gzip through zlib in memory: the values buffer is sized by the header only after the
    /// header is checked against what the compressed bytes can expand to.
    func testIDXGzipInMemoryErrors() throws {
        func gzip(_ bytes: [UInt8]) throws -> Data {
            let p = temporaryPath("x-\(bytes.count).gz")
            let gz = gzopen(p, "wb")!
            _ = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
            gzclose(gz)
            return try Data(contentsOf: URL(fileURLWithPath: p))
        }
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]
        let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 10, 20, 30, 40]
        let set = try FashionMNIST.decode(images: try gzip(images), labels: Data(labels))
        XCTAssertEqual(set.labels, [1, 2, 3, 4])
        XCTAssertEqual(set.images, [10, 20, 30, 40].map { Float($0) / 255 })
        func expectError(_ images: Data, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try FashionMNIST.decode(images: images, labels: Data(labels)), line: line) {
                XCTAssertTrue("\($0)".contains(fragment), "'\($0)' lacks '\(fragment)'", line: line)
            }
        }
        let gz = try gzip(images)
        expectError(gz.prefix(gz.count - 12), "ends early")                  // cut inside the deflate data
        expectError(gz + Data([1, 2, 3]), "data after")                      // bytes after the gzip member
        expectError(try gzip(images + [50]), "data after")                   // more values than the dimensions say
        var corrupt = gz; corrupt[12] ^= 0xFF
        expectError(corrupt, "gzip")
        // 2^30 values claimed by a 60-byte file: refused before anything that size is allocated.
        expectError(try gzip([0, 0, 8, 3, 0x40, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]), "need more bytes than the file can hold")
        expectError(Data([0, 0, 8]), "no IDX magic")
        expectError(Data([0, 0, 9, 3]), "element type")
    }

    func testCIFARBinaryFormat() throws {
        for classes in [10, 100] {
            let dir = temporaryPath("cifar\(classes)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let lb = classes == 10 ? 1 : 2
            var bytes: [UInt8] = []
            for r in 0..<3 {
                if lb == 2 { bytes.append(UInt8(r)) }          // coarse label, ignored
                bytes.append(UInt8(r * 4 + 1))                 // fine / only label
                bytes += (0..<3072).map { UInt8(($0 + r) % 256) }
            }
            let name = CIFAR.files(classes: classes, split: .test)[0]
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
            let set = try CIFAR.load(directory: dir, split: .test, classes: classes)
            XCTAssertEqual(set.labels, [1, 5, 9])
            XCTAssertEqual(set.count, 3)
            XCTAssertEqual(set.images[3072 + 1], Float(2) / 255)   // record 1, red plane, pixel 1
            XCTAssertEqual(set.images[2 * 3072 + 1024], Float((1024 + 2) % 256) / 255)   // record 2, green plane start
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes.dropLast(5)))
            XCTAssertThrowsError(try CIFAR.load(directory: dir, split: .test, classes: classes)) { XCTAssertTrue("\($0)".contains("records")) }
        }
    }
}
