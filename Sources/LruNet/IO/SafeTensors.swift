import Foundation

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Equatable, Sendable {
    public let dtype: String
    public let shape: [Int]
    /// Byte range within the data section.
    public let start: Int, end: Int
}

/// A safetensors file: an 8-byte little-endian header length, a JSON header
/// (`name -> {dtype, shape, data_offsets}` plus optional `__metadata__`
/// strings), then the raw little-endian data.
///
/// Reading validates the whole header before any tensor is touched: sizes are
/// checked against the file, so a hostile header cannot cause a large allocation.
public final class SafeTensorsFile {
    public let path: String
    public let metadata: [String: String]
    public let tensors: [String: SafeTensorInfo]
    private let data: Data
    private let dataStart: Int

    /// Largest header accepted (the format's reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000
    static let elementSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                               "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1]

    public var names: [String] { tensors.keys.sorted() }

    public init(path: String) throws {
        self.path = path
        data = try FileBytes.read(path)
        guard data.count >= 8 else { throw IOError.truncated(path: path, detail: "\(data.count) bytes, no header length") }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw IOError.malformed(path: path, detail: "not a safetensors file (header length \(n) exceeds \(Self.maxHeaderBytes) bytes)")
        }
        guard Int(n) <= data.count - 8 else {
            throw IOError.truncated(path: path, detail: "header says \(n) bytes, only \(data.count - 8) follow")
        }
        dataStart = 8 + Int(n)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)) }
        catch { throw IOError.malformed(path: path, detail: "not a safetensors file (header is not JSON)") }
        guard let header = json as? [String: Any] else { throw IOError.malformed(path: path, detail: "header is not a JSON object") }
        var meta: [String: String] = [:]
        var infos: [String: SafeTensorInfo] = [:]
        let dataBytes = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw IOError.malformed(path: path, detail: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw IOError.malformed(path: path, detail: "metadata '\(k)' is not a string") }
                    meta[k] = s
                }
                continue
            }
            func bad(_ why: String) -> IOError { .malformed(path: path, detail: "tensor '\(name)': \(why)") }
            guard let entry = value as? [String: Any],
                  let dtype = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsAny = entry["data_offsets"] as? [Any], offsAny.count == 2
            else { throw bad("needs dtype, shape and data_offsets") }
            let shape = try shapeAny.map { v -> Int in
                guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else { throw bad("bad shape \(shapeAny)") }
                return i
            }
            let offs = try offsAny.map { v -> Int in
                guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else { throw bad("bad data_offsets") }
                return i
            }
            guard let size = Self.elementSizes[dtype] else { throw IOError.unsupported(path: path, detail: "tensor '\(name)' has unknown dtype '\(dtype)'") }
            guard let count = checkedProduct(shape), count <= Int.max / 8 else { throw bad("shape \(shape) is too large") }
            guard offs[0] <= offs[1], offs[1] - offs[0] == count * size else {
                throw bad("data_offsets \(offs) do not hold \(shape) of \(dtype)")
            }
            guard offs[1] <= dataBytes else {
                throw IOError.truncated(path: path, detail: "tensor '\(name)' ends at byte \(offs[1]) of a \(dataBytes)-byte data section")
            }
            infos[name] = SafeTensorInfo(dtype: dtype, shape: shape, start: offs[0], end: offs[1])
        }
        metadata = meta
        tensors = infos
    }

    /// Copies a float32 tensor into `destination`, which must hold exactly `count` values.
    package func read(_ name: String, into destination: UnsafeMutablePointer<Float>, count: Int) throws {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        guard info.dtype == "F32" else {
            throw IOError.unsupported(path: path, detail: "tensor '\(name)' is \(info.dtype); only F32 is read")
        }
        guard (info.end - info.start) == count * 4 else {
            throw ModelError.shapeMismatch(name: name, expected: [count], got: info.shape)
        }
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + info.start
            // Little-endian on disk and in memory on every platform we run on.
            memcpy(destination, src, count * 4)
        }
    }

    /// A float32 tensor as an array.
    public func array(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        let n = checkedProduct(info.shape) ?? 0
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { try read(name, into: $0.baseAddress!, count: n) }
        return out
    }

    /// Writes float32 tensors and string metadata in safetensors format, atomically
    /// (temporary file, fsync, rename), so a crash never leaves a corrupt file.
    public static func write(tensors: [String: Tensor], metadata: [String: String], to path: String) throws {
        let named = tensors.sorted { $0.key < $1.key }
        try withBuffers(named.map(\.value.data)) { buffers in
            try write(tensors: zip(named, buffers).map { ($0.key, $0.value.shape, $1) }, metadata: metadata, to: path)
        }
    }

    /// A float32 tensor, with its shape.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        return Tensor(shape: info.shape, data: try array(name))
    }

    package static func write(tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            precondition(checkedProduct(t.shape) == t.values.count, "safetensors write: \(t.name) shape \(t.shape) vs \(t.values.count) values")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.values.count * 4]] as [String: Any]
            offset += t.values.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }     // the format pads the header with spaces
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for t in sorted where t.values.count > 0 { out.append(UnsafeRawBufferPointer(t.values).bindMemory(to: UInt8.self)) }
        try FileBytes.writeAtomically(out, to: path)
    }
}

/// Runs `body` with a buffer pointer to each array (nested `withUnsafeBufferPointer` calls).
private func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    func step(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) throws -> R {
        if i == arrays.count { return try body(acc) }
        return try arrays[i].withUnsafeBufferPointer { try step(i + 1, acc + [$0]) }
    }
    return try step(0, [])
}
